"""Reading a request as the service does: keys matched case-insensitively against the
catalog, values checked against each field's kind, cap, maximum and enum.

Two kinds of refusal, as an ASP.NET service gives them:

* ``binding`` errors (malformed JSON, a value of the wrong JSON type) are caught by the
  model binder before the action runs and answered as ProblemDetails;
* rule errors (missing required field, over 100 values, unknown language, bad enum code,
  page size over 100) are answered by the action in the API's own envelope.

Enum values must be the API's codes (``"32"``, ``1``, ``"Microsoft Teams"``, ``"en-US"``,
compared case-insensitively); the playbook's friendly names are the compiler's business.
"""

from __future__ import annotations

from typing import Any

from runner import catalog
from runner.catalog import ApiEnum, Field, Filter, Operation
from runner.sim.tenant import parse_time


class BadRequest(Exception):
    def __init__(self, message: str, field: str = "", binding: bool = False):
        super().__init__(message)
        self.message = message
        self.field = field
        self.binding = binding


def read(op: Operation, body: dict[str, Any]) -> dict[str, Any]:
    """The request's values by playbook field name (plus ``token``/``start_page``)."""
    lowered = {str(key).lower(): value for key, value in body.items()}
    values: dict[str, Any] = {}
    for f in op.fields:
        raw = lowered.get(f.api.lower())
        values[f.name] = _value(op, f, raw)
    if op.paging == "start_page" and op.page_start_field:
        values["start_page"] = _start_page(op.page_start_field,
                                           lowered.get(op.page_start_field.lower()))
    if op.paging == "token" and op.token_field:
        token = lowered.get(op.token_field.lower())
        if token is not None and not isinstance(token, str):
            raise BadRequest(f"The field {op.token_field} must be a string.", op.token_field,
                             binding=True)
        values["token"] = token or None
    return values


def _missing(f: Field) -> BadRequest:
    return BadRequest(f"The {f.api} field is required.", f.api)


def _value(op: Operation, f: Field, raw: Any) -> Any:
    if raw is None:
        if f.required:
            raise _missing(f)
        return f.default
    reader = {
        "string": _string, "int": _int, "datetime": _datetime, "string_list": _string_list,
        "enum": _enum, "enum_list": _enum_list, "filters": _filters,
    }[f.kind]
    return reader(op, f, raw)


def _string(op: Operation, f: Field, raw: Any) -> str:
    if not isinstance(raw, str):
        raise BadRequest(f"The JSON value for {f.api} could not be converted to String.", f.api,
                         binding=True)
    return raw


def _int(op: Operation, f: Field, raw: Any) -> int:
    number = _as_int(f.api, raw)
    if f.maximum is not None and not 1 <= number <= f.maximum:
        raise BadRequest(f"The {f.api} must be between 1 and {f.maximum}; it was {number}.",
                         f.api)
    return number


def _as_int(api: str, raw: Any) -> int:
    if isinstance(raw, bool):
        raise BadRequest(f"The JSON value for {api} could not be converted to Int32.", api,
                         binding=True)
    if isinstance(raw, int):
        return raw
    digits = raw.strip() if isinstance(raw, str) else ""
    # Json.NET converts numeric strings, so the service does; never thousands of digits
    # (Python refuses those with a ValueError: a 500, not a 400).
    if digits.lstrip("-").isdigit() and digits.isascii() and len(digits) <= 20:
        return int(digits)
    raise BadRequest(f"The JSON value for {api} could not be converted to Int32.", api,
                     binding=True)


def _datetime(op: Operation, f: Field, raw: Any) -> str:
    if not isinstance(raw, str):
        raise BadRequest(f"The JSON value for {f.api} could not be converted to DateTime.",
                         f.api, binding=True)
    try:
        parse_time(raw)
    except ValueError as exc:
        raise BadRequest(f"The value '{raw}' is not a valid DateTime for {f.api}.", f.api,
                         binding=True) from exc
    return raw


def _string_list(op: Operation, f: Field, raw: Any) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        raise BadRequest(f"The JSON value for {f.api} could not be converted to a list of "
                         f"strings.", f.api, binding=True)
    if f.cap is not None and len(raw) > f.cap:
        raise BadRequest(f"The {f.api} field accepts at most {f.cap} values; {len(raw)} were "
                         f"given.", f.api)
    if f.required and not raw and not f.empty_allowed:
        raise BadRequest(f"The {f.api} field must contain at least one value.", f.api)
    return raw


def code(enum: ApiEnum, api: str, raw: Any) -> int | str:
    """The enum code ``raw`` names, compared as the service does (codes only)."""
    if isinstance(raw, list) and len(raw) == 1:
        raw = raw[0]  # the reference calls ExportOptionType a "String Array"
    if not isinstance(raw, str | int) or isinstance(raw, bool):
        raise BadRequest(f"The JSON value for {api} could not be converted.", api, binding=True)
    key = str(raw).strip().lower()
    for member in enum.members:
        if str(member.code).lower() == key:
            return member.code
    valid = ", ".join(str(m.code) for m in enum.members)
    raise BadRequest(f"The value '{raw}' is not valid for {api}. Valid values are: {valid}.",
                     api)


def _enum(op: Operation, f: Field, raw: Any) -> int | str:
    assert f.enum is not None
    return code(f.enum, f.api, raw)


def _enum_list(op: Operation, f: Field, raw: Any) -> list[int | str]:
    assert f.enum is not None
    if not isinstance(raw, list):
        raise BadRequest(f"The JSON value for {f.api} could not be converted to a list.", f.api,
                         binding=True)
    if f.required and not raw and not f.empty_allowed:
        raise BadRequest(f"The {f.api} field must contain at least one value.", f.api)
    return [code(f.enum, f.api, v) for v in raw]


def _filters(op: Operation, f: Field, raw: Any) -> dict[str, list[Any]]:
    """``[{id, values}]`` as ``{filter name: [codes or strings]}``."""
    if not isinstance(raw, list):
        raise BadRequest("The JSON value for filters could not be converted to a list.",
                         "filters", binding=True)
    out: dict[str, list[Any]] = {}
    for item in raw:
        lowered = {str(k).lower(): v for k, v in item.items()} if isinstance(item, dict) else {}
        ident, values = lowered.get("id"), lowered.get("values")
        if not isinstance(ident, str) or not isinstance(values, list):
            raise BadRequest("Each filter must be an object with an id and a list of values.",
                             "filters", binding=True)
        try:
            flt = op.filter(ident)
        except KeyError:
            valid = ", ".join(x.api for x in op.filters)
            raise BadRequest(f"The filter id '{ident}' is not supported by this API. Valid "
                             f"ids are: {valid}.", f"filters.{ident}") from None
        out.setdefault(flt.name, []).extend(_filter_values(flt, values))
    return out


def _filter_values(flt: Filter, values: list[Any]) -> list[Any]:
    where = f"filters.{flt.api}"
    if flt.max_values is not None and len(values) > flt.max_values:
        raise BadRequest(f"The filter {flt.api} accepts at most {flt.max_values} values.", where)
    if flt.enum is not None:
        return [code(flt.enum, where, v) for v in values]
    if not all(isinstance(v, str) for v in values):
        raise BadRequest(f"The values of filter {flt.api} must be strings.", where, binding=True)
    if flt.kind == "datetime":
        for v in values:
            try:
                parse_time(v)
            except ValueError:
                raise BadRequest(f"The value '{v}' of filter {flt.api} is not a valid "
                                 f"DateTime.", where) from None
    return list(values)


def _start_page(api: str, raw: Any) -> int:
    if raw is None:
        return 1  # documented default
    number = _as_int(api, raw)
    if number < 1:
        raise BadRequest(f"The {api} must be 1 or greater; it was {number}.", api)
    return number


def language(values: dict[str, Any]) -> str:
    return str(values.get("language") or catalog.DEFAULT_LANGUAGE)
