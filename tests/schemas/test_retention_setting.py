"""The landing retention period is a setting: THROUGHLINE_LANDING_RETENTION_DAYS, default 730 days."""

from __future__ import annotations

import pytest

from cli.main import main
from schemas.settings import (
    DEFAULT_LANDING_RETENTION_DAYS,
    LANDING_RETENTION_ENV,
    SettingsError,
    ThroughlineSettings,
)


def test_the_retention_period_is_a_setting_with_a_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ThroughlineSettings.from_env({}).landing_retention_days == DEFAULT_LANDING_RETENTION_DAYS == 730
    assert ThroughlineSettings.from_env({LANDING_RETENTION_ENV: " 90 "}).landing_retention_days == 90
    for bad in ("0", "-5", "two years"):
        with pytest.raises(SettingsError, match=LANDING_RETENTION_ENV):
            ThroughlineSettings.from_env({LANDING_RETENTION_ENV: bad})


def test_a_setting_no_command_can_use_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    monkeypatch.setenv("THROUGHLINE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(LANDING_RETENTION_ENV, "soon")
    assert main(["status"]) == 2
    assert f"{LANDING_RETENTION_ENV} must be a whole number of days" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["retention", "--days", "0"])
    assert exited.value.code == 2
