"""README's "Moving to the Graph API" tables are the catalog's (generated, never edited)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner import docs_v2

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.mark.parametrize("key", sorted(docs_v2.BLOCKS))
def test_readme_block_is_generated_from_the_catalog(key: str) -> None:
    text = README.read_text(encoding="utf-8")
    begin = text.index(f"<!-- {key}:begin")
    block = text[text.index("\n", begin) + 1: text.index(f"<!-- {key}:end -->")]
    assert block == docs_v2.BLOCKS[key](), (
        f"README's {key} table is stale: paste runner.docs_v2.BLOCKS[{key!r}]() into it")


def test_the_readme_says_plainly_that_set_tag_writes() -> None:
    text = README.read_text(encoding="utf-8")
    assert "`set_tag` **writes to the tenant**" in text
    assert "never runs under `run --check`" in text
