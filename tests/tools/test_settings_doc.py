"""docs/settings.md is generated from the settings models and kept current."""

from __future__ import annotations

from pathlib import Path

import pytest

from settings.model import StackSettings
from tools import settings_doc


def test_the_checked_in_reference_is_current() -> None:
    assert settings_doc.OUTPUT.read_text() == settings_doc.render(), "docs/settings.md is stale: run `make docs`"


def test_check_mode_fails_on_a_stale_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "settings.md"
    stale.write_text(settings_doc.render().replace("<= 16", "<= 17"))
    monkeypatch.setattr(settings_doc, "OUTPUT", stale)
    monkeypatch.chdir(tmp_path)
    assert settings_doc.main(["--check"]) == 1
    assert settings_doc.main([]) == 0
    assert settings_doc.main(["--check"]) == 0


def test_every_key_is_documented_with_its_bound_and_rule() -> None:
    page = settings_doc.render()
    for _prefix, model in settings_doc._sections(StackSettings, ""):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no docstring: the reference would say nothing"
    assert "| `sophia:dataLayer.qdrant.clusters` | integer | required | >= 1; <= 16 |" in page
    assert "min <= desired <= max." in page
    assert "| `sophia:lambdaApiKey` (secret) |" in page
