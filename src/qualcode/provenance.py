"""``run_manifest.json``: what a run read, with which versions, and what it skipped."""

from __future__ import annotations

import platform
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

from .documents import Skipped

PACKAGES = ("qualcode", "prefect", "spacy", "scikit-learn", "pandas", "pydantic",
            "sentence-transformers", "torch")


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def skipped_entries(skipped: Sequence[Skipped], notes: bool = False) -> list[dict[str, Any]]:
    """``path``, ``reason`` and ``line`` of the entries that are skips (or ``notes``)."""
    return [{"path": s.path, "reason": s.reason, "line": s.line}
            for s in skipped if s.note == notes]


def run_manifest(
    *,
    run_id: str,
    started: str,
    seconds: float,
    parameters: dict[str, Any],
    codebook: dict[str, Any],
    model: dict[str, Any] | None,
    inputs: list[dict[str, Any]],
    counts: dict[str, int],
    skipped: list[Skipped],
    outputs: dict[str, str],
    review_problems: Sequence[Skipped] = (),
) -> dict[str, Any]:
    """The provenance record every run writes beside its outputs."""
    return {
        "run_id": run_id,
        "started": started,
        "finished": now(),
        "seconds": round(seconds, 3),
        "versions": versions(),
        "parameters": parameters,
        "codebook": codebook,
        "model": model,
        "counts": counts,
        "skipped": skipped_entries(skipped),
        "notes": skipped_entries(skipped, notes=True),
        "review_problems": skipped_entries(review_problems),
        "inputs": inputs,
        "outputs": outputs,
    }
