"""Incremental runs: cold, warm and one-file-changed timings of `qualcode run`.

    python benchmarks/bench_incremental.py                  # ~200k words, fast backend
    python benchmarks/bench_incremental.py --words 1000000  # the 1M-word target corpus

Each run is the real command (`qualcode run`, a new process) against a project Prefect
server that this script starts in its work folder and stops at the end. It prints, per
scenario, the wall time, the processing time (wall time minus a one-document run's: the
fixed cost of starting Python and Prefect and loading the model, measured as the faster of
two reruns on a one-document corpus), and what Prefect's cache let the run skip:

- cold:            first run, trains the model from the codebook;
- cold, trained:   first run on a fresh output folder that already holds the trained model;
- warm:            rerun, nothing changed (outputs must be byte-identical, run metadata
                   apart; they are not even rewritten);
- one changed:     one transcript edited;
- one added:       one transcript added.

Target (issue 6): warm processing <= 15% of the cold run's on the 1M-word corpus.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from generate_corpus import generate

from qualcode import server

ROOT = Path(__file__).resolve().parents[1]
METADATA_FILES = {"run_manifest.json", "report.html"}  # carry run id and times


def run(corpus: Path, out: Path, env: dict[str, str], args: argparse.Namespace) -> dict:
    command = [sys.executable, "-m", "qualcode.cli", "run", "--corpus", str(corpus),
               "--codebook", str(ROOT / "codebook.yaml"), "--out", str(out),
               "--backend", args.backend]
    for flag, value in (("--batch-size", args.batch_size), ("--workers", args.workers)):
        if value is not None:
            command += [flag, str(value)]
    t0 = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if done.returncode:
        sys.exit(f"qualcode run failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    manifest = json.loads((out / "run_manifest.json").read_text(encoding="utf-8"))
    return {"wall": wall, "flow": manifest["seconds"], **manifest["incremental"],
            "counts": manifest["counts"], "failed": manifest["failed_batches"]}


def outputs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())
            if p.is_file() and p.name not in METADATA_FILES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=200_000,
                        help="size of the generated corpus (default 200000; 1000000 for the "
                             "target)")
    parser.add_argument("--backend", default="fast", choices=("fast", "semantic"))
    parser.add_argument("--workers", type=int, default=None,
                        help="as qualcode run --workers (default: as qualcode run)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="as qualcode run --batch-size (default: as qualcode run)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep corpus, outputs and Prefect home here (default: a temp "
                             "folder, removed at the end)")
    args = parser.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="qualcode-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    corpus, out = work / "corpus", work / "out"
    shutil.rmtree(corpus, ignore_errors=True)
    words = generate(corpus, args.words)
    files = sorted(p for p in corpus.rglob("*") if p.is_file())
    one = work / "one"
    shutil.rmtree(one, ignore_errors=True)
    (one / "transcripts").mkdir(parents=True)
    first = next(p for p in files if p.suffix == ".txt")
    shutil.copy(first, one / "transcripts" / first.name)
    for folder in (out, work / "out-trained", work / "out-one"):
        shutil.rmtree(folder, ignore_errors=True)

    home = work / ".prefect"
    t0 = time.perf_counter()
    info, started = server.start(home)
    print(f"{words:,} words in {len(files)} files; Prefect server "
          f"{'started' if started else 'reused'} in {time.perf_counter() - t0:.1f} s "
          f"at {info.url}", flush=True)
    env = {**os.environ, "PREFECT_API_URL": info.api_url, "PREFECT_HOME": str(home)}
    rows: list[tuple[str, dict]] = []
    try:
        rows.append(("cold", run(corpus, out, env, args)))
        cold_outputs = outputs(out)
        # The same first run on an output folder that already holds the trained model.
        (work / "out-trained").mkdir()
        shutil.copytree(out / "model", work / "out-trained" / "model")
        rows.append(("cold, trained", run(corpus, work / "out-trained", env, args)))
        rows.append(("warm", run(corpus, out, env, args)))
        identical = outputs(out) == cold_outputs
        changed = next(p for p in files[len(files) // 2:] if p.suffix == ".txt")
        with changed.open("a", encoding="utf-8") as handle:
            handle.write("\nRespondent: One more remark added after the first run.\n")
        rows.append(("one changed", run(corpus, out, env, args)))
        added = corpus / "transcripts" / "zz_added.txt"
        added.write_text(first.read_text(encoding="utf-8").replace("doc_id:", "doc_id: NEW"),
                         encoding="utf-8")
        rows.append(("one added", run(corpus, out, env, args)))
        # The fixed cost of any run: a one-document corpus, already coded (the fastest
        # of two reruns), so that start-up, Prefect and the model load are all it pays.
        (work / "out-one").mkdir()
        shutil.copytree(out / "model", work / "out-one" / "model")
        run(one, work / "out-one", env, args)
        baseline = min((run(one, work / "out-one", env, args) for _ in range(2)),
                       key=lambda r: r["wall"])
    finally:
        if started:
            server.stop(home)
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)

    base = baseline["wall"]
    print(f"\none-document rerun (fixed cost): {base:.1f} s wall; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other work skews timings)\n")
    print(f"{'scenario':<15}{'wall s':>8}{'process s':>11}{'flow s':>8}{'files read':>12}"
          f"{'segments scored':>17}{'batches cached':>16}")
    for name, r in rows:
        cached = f"{r['ingest_batches_cached']}/{r['ingest_batches']}+" \
                 f"{r['code_batches_cached']}/{r['code_batches']}"
        print(f"{name:<15}{r['wall']:>8.1f}{r['wall'] - base:>11.1f}{r['flow']:>8.1f}"
              f"{r['files_read']:>12}{r['segments_scored']:>17}{cached:>16}")
    by = dict(rows)
    for reference in ("cold", "cold, trained"):
        share = (by["warm"]["wall"] - base) / max(1e-9, by[reference]["wall"] - base)
        print(f"warm processing = {share:.0%} of '{reference}' processing "
              f"(target <= 15%)")
    print(f"warm outputs byte-identical to cold (run metadata apart): "
          f"{'yes' if identical else 'NO'}")
    if any(r["failed"] for _, r in rows):
        print("some batches failed: see run_manifest.json")


if __name__ == "__main__":
    main()
