"""Publishing a run's outputs as one set: write everything aside, then move it in.

A run writes its datasets and reports into ``<out>/.incoming/`` and only when all of them
are complete moves them into ``<out>`` (one rename per file, ``run_manifest.json`` last).
A crash before that leaves the previous run's outputs as they were; the next run clears
the leftovers. Outputs of the previous run that this run does not produce (a cross-tab of
a field that no longer exists, ``reliability.csv`` once the reviews are gone) are removed so
that ``<out>`` never mixes two runs.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from qualcode.outputs import EVALUATION_CSV, RUN_MANIFEST
from qualcode.report import VARIABLE_PATTERNS

STAGING_DIR = ".incoming"
# Files that live in <out> between runs and that the reports read (written by the model
# evaluation, not by the run itself): copied into the staging folder, never moved back.
READ_ONLY_INPUTS = (EVALUATION_CSV,)


def open_staging(out: Path) -> Path:
    """A fresh, empty staging folder inside ``out`` (on the same file system)."""
    staging = out / STAGING_DIR
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in READ_ONLY_INPUTS:
        if (out / name).is_file():
            shutil.copy2(out / name, staging / name)
    return staging


def _previous_outputs(out: Path) -> set[str]:
    try:
        manifest = json.loads((out / RUN_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    outputs = manifest.get("outputs") or {}
    return {name for name in outputs if isinstance(name, str) and "/" not in name}


def promote(staging: Path, out: Path, protected: Iterable[str] = READ_ONLY_INPUTS) -> list[str]:
    """Move the staged files into ``out`` (manifest last); return the names moved."""
    protected = set(protected)
    names = sorted(p.name for p in staging.iterdir() if p.is_file() and p.name not in protected)
    names.sort(key=lambda name: name == RUN_MANIFEST)
    stale = _previous_outputs(out) - set(names) - protected
    for pattern in VARIABLE_PATTERNS:
        stale.update(p.name for p in out.glob(pattern) if p.name not in names)
    for name in names:
        os.replace(staging / name, out / name)
    for name in sorted(stale):
        target = out / name
        if target.is_file():
            target.unlink()
    shutil.rmtree(staging, ignore_errors=True)
    return names


def discard(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)
