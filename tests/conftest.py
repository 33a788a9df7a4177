"""Shared fixtures. Prefect is configured for privacy before it is first imported."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DEVSET = SHARED / "devset"

# Keep Prefect's home (database, settings) out of the user's ~/.prefect and the repo.
if "PREFECT_HOME" not in os.environ:
    _home = tempfile.mkdtemp(prefix="qualcode-prefect-")
    atexit.register(shutil.rmtree, _home, ignore_errors=True)
    os.environ["PREFECT_HOME"] = _home
os.environ.pop("PREFECT_API_URL", None)
import flows  # noqa: E402,F401  (sets qualcode's Prefect defaults)


@contextmanager
def api_at(url: str) -> Iterator[str]:
    """Prefect's API at ``url`` for the block. Prefect's events worker is process-wide and
    keeps the server it first sent to, and task-run states travel as events: it is
    drained before and after, so that they reach ``url`` (and only ``url``)."""
    from prefect.events.worker import EventsWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    EventsWorker.drain_all()
    try:
        with temporary_settings(updates={PREFECT_API_URL: url}):
            yield url
    finally:
        EventsWorker.drain_all()


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A real Prefect server (temporary SQLite database) for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture
def sample_corpus(tmp_path: Path) -> Path:
    """A private copy of the project's sample corpus."""
    target = tmp_path / "corpus"
    shutil.copytree(ROOT / "corpus", target)
    return target


@pytest.fixture
def devset() -> Path:
    if not DEVSET.is_dir():
        pytest.skip(f"the shared dev set is not at {DEVSET}")
    return DEVSET


@pytest.fixture
def codebook_path() -> Path:
    return ROOT / "codebook.yaml"


def write_corpus(tmp_path: Path, files: dict[str, str | bytes]) -> Path:
    """``tmp_path/corpus`` holding ``files`` (relative path -> text, UTF-8, or bytes)."""
    corpus = tmp_path / "corpus"
    for name, content in files.items():
        path = corpus / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
    return corpus
