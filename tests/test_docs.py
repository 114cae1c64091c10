"""The documentation stays a short entry point and its links lead somewhere."""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO_ROOT

DOCS = sorted([REPO_ROOT / "README.md", *(REPO_ROOT / "docs").rglob("*.md")])
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


@pytest.mark.parametrize(("name", "most"), [("README.md", 250), ("docs/ARCHITECTURE.md", 300)])
def test_entry_documents_stay_short(name, most):
    """README and ARCHITECTURE are read in minutes: details go to topic docs and decisions."""
    lines = (REPO_ROOT / name).read_text().count("\n")
    assert lines <= most, f"{name} has {lines} lines; move details to docs/<topic>.md"


@pytest.mark.parametrize("document", DOCS, ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_relative_links_resolve(document):
    """Every relative link in the README and docs/ names a file or folder that exists."""
    text = COMMENT.sub("", document.read_text())
    targets = [target for target in LINK.findall(text) if "://" not in target]
    missing = [target for target in targets if not (document.parent / target).exists()]
    assert missing == []


def test_decision_records_are_numbered_and_listed():
    """Each decision record is NNNN-title.md, numbers are unique, and the index lists it."""
    folder = REPO_ROOT / "docs" / "decisions"
    records = sorted(path.name for path in folder.glob("*.md") if path.name != "README.md")
    assert records, "no decision records"
    assert all(re.fullmatch(r"\d{4}-[a-z0-9-]+\.md", name) for name in records), records
    numbers = [name[:4] for name in records]
    assert len(set(numbers)) == len(numbers), numbers
    index = (folder / "README.md").read_text()
    assert [name for name in records if f"({name})" not in index] == []
