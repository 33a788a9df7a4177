"""report.html renders in a real headless browser (Debian's chromium) without errors."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from qualcode.report import write_reports

from .test_report import codebook, out  # noqa: F401  (fixtures)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_report_renders_in_headless_chromium(out: Path, codebook, tmp_path: Path) -> None:  # noqa: F811
    write_reports(out, codebook)
    page = (out / "report.html").resolve()
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
         "--v=0", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert "<h1" in dom and "</html>" in dom and "Frequencies" in dom
    console_errors = [line for line in result.stderr.splitlines()
                      if "CONSOLE" in line and ("Error" in line or "error" in line)]
    assert console_errors == []
    # nothing was fetched from the network: every resource is inline
    assert "net::ERR" not in result.stderr
