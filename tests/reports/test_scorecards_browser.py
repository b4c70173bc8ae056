"""A scorecard in a real browser: headless Chromium loads the file, the charts draw, the check script
reports them under the page's Content-Security-Policy, and a screenshot is kept as an artifact."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from reports import write_reports
from tests.conftest import REPO_ROOT
from tests.reports.conftest import ALPHA, AS_OF, Marts

ARTIFACTS = REPO_ROOT / "tests" / "artifacts"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("chromium is not installed: `make test` installs it (apt-get install chromium)")


def _run(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    command = [
        _chromium(),
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


@pytest.mark.system
def test_charts_draw_in_headless_chromium(tmp_path: Path, marts: Marts) -> None:
    written = write_reports(tmp_path / "reports", **marts.inputs(), as_of=AS_OF)
    page = written.pages[ALPHA.partner_id]
    url = page.resolve().as_uri()

    dumped = _run(["--virtual-time-budget=5000", "--dump-dom", url], tmp_path / "profile-dom")
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dumped.stdout)
    assert body, f"no <body> in Chromium's DOM dump; stderr: {dumped.stderr[-2000:]}"
    expected = re.search(r'data-charts-expected="(\d+)"', body.group(0))
    drawn = re.search(r'data-charts-drawn="(\d+)"', body.group(0))
    assert expected and drawn, f"the chart check did not run (blocked script?): {body.group(0)}"
    assert int(expected.group(1)) == 3
    assert int(drawn.group(1)) == int(expected.group(1)) > 0

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / f"scorecard-{ALPHA.partner_id}.png"
    screenshot.unlink(missing_ok=True)
    shot = _run(
        ["--hide-scrollbars", f"--screenshot={screenshot}", "--window-size=1200,1600", url],
        tmp_path / "profile-shot",
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.is_file() and screenshot.stat().st_size > 10_000
    shutil.copyfile(written.index, ARTIFACTS / "scorecard-index.html")
    shutil.copyfile(page, ARTIFACTS / f"scorecard-{ALPHA.partner_id}.html")
