"""Documentation that is generated from code stays in sync with it."""

from __future__ import annotations

from pathlib import Path

from config.reference import render

ROOT = Path(__file__).resolve().parents[2]


def test_settings_reference_is_up_to_date():
    assert (ROOT / "docs" / "configuration.md").read_text() == render(), (
        "run: python -m config.reference > docs/configuration.md"
    )


def test_readme_opens_with_the_two_commands():
    head = "\n".join((ROOT / "README.md").read_text().splitlines()[:15])
    assert "make demo" in head and "make test" in head
    assert "make test" in (ROOT / ".ci" / "run").read_text()
