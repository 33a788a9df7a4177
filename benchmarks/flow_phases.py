"""Where a flow run's time goes: seconds spent in each step of ``code-corpus``.

    python benchmarks/flow_phases.py [--words 1000000] [--backend fast] [--workers 1]

Wraps the flow's steps with timers (reading, scoring, model, datasets, reports, cache
records) and runs the flow once on a generated corpus after Prefect has started. Steps
that run inside worker processes (``--workers > 1``) are not seen; the rest of the wall
time is Prefect's own bookkeeping. A tool for finding the next thing to speed up, not a
target.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("PREFECT_HOME", str(ROOT / ".prefect"))

from generate_corpus import generate  # noqa: E402

import flows  # noqa: E402  (privacy defaults before Prefect is imported)
import flows.code_corpus as flow_module  # noqa: E402
import flows.incremental as incremental  # noqa: E402
import flows.reports as reports  # noqa: E402
import qualcode.classify as classify  # noqa: E402

SPENT: Counter[str] = Counter()
STEPS = {
    flow_module: ["load_codebook", "ingest_keys", "process_batch", "ensure_model",
                  "coding_key", "write_datasets", "outputs_fingerprint", "prune_results"],
    classify: ["code_segments"],
    reports: ["write_reports"],
}


def _timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            SPENT[name] += time.perf_counter() - t0

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("fast", "semantic"), default="fast")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    for module, names in STEPS.items():
        for name in names:
            if args.workers > 1 and name == "process_batch":
                continue  # runs in the worker processes (and must pickle by name)
            setattr(module, name, _timed(name, getattr(module, name)))
    incremental.FileRecords.get = _timed("records.get", incremental.FileRecords.get)
    for task in (flow_module.ingest_batch, flow_module.code_batch):
        task.fn = _timed(f"{task.name} (inside)", task.fn)

    from prefect import flow

    @flow(name="bench-warm-up")
    def warm_up() -> None:
        """Starts Prefect's temporary server (start-up is not processing)."""

    work = Path(tempfile.mkdtemp(prefix="qualcode-phases-"))
    try:
        words = generate(work / "corpus", args.words)
        warm_up()
        t0 = time.perf_counter()
        with flows.in_process_run():  # as qualcode run
            flow_module.code_corpus(corpus=str(work / "corpus"),
                                    codebook=str(ROOT / "codebook.yaml"),
                                    out=str(work / "out"), backend=args.backend,
                                    workers=args.workers)
        seconds = time.perf_counter() - t0
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{words:,} words, backend {args.backend}, {args.workers} worker(s): "
          f"flow {seconds:.1f} s")
    for name, spent in SPENT.most_common():
        print(f"  {name:28s} {spent:6.2f} s")


if __name__ == "__main__":
    main()
