"""A minimal .xlsx writer: one workbook of plain sheets (inline strings, numbers, a bold
header row), written with zipfile and XML strings because it is many times faster than a
general library and the simulator builds large exports.  openpyxl and Excel read it.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable, Sequence
from typing import Any
from xml.sax.saxutils import escape

_OFFICE = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/xl/workbook.xml" ContentType="{_OFFICE}.sheet.main+xml"/>'
    f'<Override PartName="/xl/styles.xml" ContentType="{_OFFICE}.styles+xml"/>'
    "{sheets}</Types>"
)
_SHEET_TYPE = ('<Override PartName="/xl/worksheets/sheet{n}.xml" ContentType="application/'
               'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>')
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
_STYLES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="1"><fill><patternFill patternType="none"/></fill></fills>'
    '<borders count="1"><border/></borders>'
    '<cellStyleXfs count="1"><xf/></cellStyleXfs>'
    '<cellXfs count="2"><xf fontId="0" xfId="0"/><xf fontId="1" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_INVALID_XML = {c: None for c in range(32) if c not in (9, 10, 13)}
_NEEDS_WORK = re.compile(r"[&<>\x00-\x08\x0b\x0c\x0e-\x1f]")

Sheet = tuple[str, Sequence[str], Iterable[Sequence[Any]]]  # name, headers, rows


def workbook(sheets: Sequence[Sheet], date_time: tuple[int, int, int, int, int, int]) -> bytes:
    """An .xlsx file of ``sheets``; ``date_time`` stamps every part so output is stable."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:

        def put(name: str, text: str) -> None:
            info = zipfile.ZipInfo(name, date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text.encode("utf-8"), compresslevel=1)

        put("[Content_Types].xml", _CONTENT_TYPES.format(
            sheets="".join(_SHEET_TYPE.format(n=n) for n in range(1, len(sheets) + 1))))
        put("_rels/.rels", _ROOT_RELS)
        put("xl/workbook.xml", _workbook_xml([name for name, _, _ in sheets]))
        put("xl/_rels/workbook.xml.rels", _workbook_rels(len(sheets)))
        put("xl/styles.xml", _STYLES)
        for n, (_, headers, rows) in enumerate(sheets, start=1):
            put(f"xl/worksheets/sheet{n}.xml", _sheet_xml(headers, rows))
    return buffer.getvalue()


def _workbook_xml(names: list[str]) -> str:
    sheets = "".join(f'<sheet name="{escape(_sheet_name(name), {chr(34): "&quot;"})}" '
                     f'sheetId="{n}" r:id="rId{n}"/>' for n, name in enumerate(names, start=1))
    return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><sheets>{sheets}</sheets></workbook>')


def _sheet_name(name: str) -> str:
    # Excel: at most 31 characters, none of []:*?/\
    return "".join("_" if c in "[]:*?/\\" else c for c in name)[:31] or "Sheet"


def _workbook_rels(count: int) -> str:
    rels = "".join(
        f'<Relationship Id="rId{n}" Type="{_REL}/worksheet" Target="worksheets/sheet{n}.xml"/>'
        for n in range(1, count + 1))
    styles = count + 1
    rels += f'<Relationship Id="rId{styles}" Type="{_REL}/styles" Target="styles.xml"/>'
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns='
            f'"http://schemas.openxmlformats.org/package/2006/relationships">{rels}</Relationships>')


def _sheet_xml(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    parts = [f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
             f'<worksheet xmlns="{_MAIN}">', "", "<sheetData>",
             '<row r="1">', *(_cell(h, bold=True) for h in headers), "</row>"]
    last_row, width = 1, len(headers)
    for last_row, row in enumerate(rows, start=2):
        parts.append(f'<row r="{last_row}">{"".join([_cell(value) for value in row])}</row>')
        width = max(width, len(row))
    parts.append("</sheetData></worksheet>")
    # readers that stream (openpyxl read-only) take the sheet's size from <dimension>
    parts[1] = f'<dimension ref="A1:{_column(max(width, 1))}{last_row}"/>'
    return "".join(parts)


def _column(number: int) -> str:
    letters = ""
    while number:
        number, rest = divmod(number - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _cell(value: Any, bold: bool = False) -> str:
    # The hot loop of a big export: strings first, type() not isinstance().
    kind = type(value)
    if kind is str and value and not bold:
        if _NEEDS_WORK.search(value):  # most cells need neither escaping nor cleaning
            value = escape(value.translate(_INVALID_XML))
        return f"<c t=\"inlineStr\"><is><t>{value}</t></is></c>"
    style = ' s="1"' if bold else ""
    if value is None or value == "":
        return f"<c{style}/>"
    if kind is bool:
        return f'<c t="b"{style}><v>{int(value)}</v></c>'
    if kind is int or kind is float:
        return f"<c{style}><v>{value}</v></c>"
    text = ", ".join(map(str, value)) if kind is list or kind is tuple else str(value)
    text = escape(text.translate(_INVALID_XML))
    return f'<c t="inlineStr"{style}><is><t>{text}</t></is></c>'
