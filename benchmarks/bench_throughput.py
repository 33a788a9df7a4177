"""Throughput of the main flow on a large generated corpus (issue 3's speed targets).

    python benchmarks/bench_throughput.py [--words 1000000] [--backend fast|semantic]
                                          [--trained]

Prints words/s through the whole flow (ingest, segment, rules, model, outputs, reports;
excluding interpreter and Prefect server start-up), next to bare ``spacy.blank("en")``
tokenisation and, for the semantic backend, bare ``SentenceTransformer.encode`` of the
same segment texts, measured in the same run.

By default the output folder starts empty, so the timed run also trains the model from
the codebook (a first run). With ``--trained`` the model is trained beforehand by
``qualcode train`` in its own process, as a researcher's later runs find it (new files,
same codebook and reviews): the timed run then only processes the corpus.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from generate_corpus import generate  # noqa: E402

os.environ.setdefault("PREFECT_HOME", str(ROOT / ".prefect"))
import flows  # noqa: E402  (privacy defaults before Prefect is imported)


def _busy_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy (Linux), for the CPU split."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            ticks = [int(v) for v in handle.readline().split()[1:]]
    except OSError:
        return None
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("fast", "semantic"), default="fast")
    parser.add_argument("--keep", action="store_true", help="keep the generated corpus")
    parser.add_argument("--workers", type=int, default=None,
                        help="as qualcode run --workers (default: as qualcode run)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="as qualcode run --batch-size (default: as qualcode run)")
    parser.add_argument("--trained", action="store_true",
                        help="train the model first (qualcode train, not timed)")
    args = parser.parse_args()

    import spacy

    from flows.code_corpus import code_corpus
    from qualcode.corpus import flat_segments, read_corpus

    work = Path(tempfile.mkdtemp(prefix="qualcode-bench-"))
    corpus, out = work / "corpus", work / "outputs"
    words = generate(corpus, args.words)
    texts = [s.text for s in flat_segments(read_corpus(corpus)) if s.codable]
    n_words = sum(len(t.split()) for t in texts)

    if args.trained:
        subprocess.run([str(Path(sys.executable).with_name("qualcode")), "train",
                        "--corpus", str(corpus), "--codebook", str(ROOT / "codebook.yaml"),
                        "--out", str(out), "--backend", args.backend],
                       check=True, stdout=subprocess.DEVNULL)

    nlp = spacy.blank("en")
    t0 = time.perf_counter()
    for _ in nlp.pipe(texts, batch_size=256):
        pass
    spacy_wps = n_words / (time.perf_counter() - t0)

    from prefect import flow

    @flow(name="bench-warm-up")
    def warm_up() -> None:
        """Starts Prefect's temporary server (start-up is not processing)."""

    warm_up()
    busy0, cpu0, t0 = _busy_seconds(), time.process_time(), time.perf_counter()
    with flows.in_process_run():  # as qualcode run
        summary = code_corpus(corpus=str(corpus), codebook=str(ROOT / "codebook.yaml"),
                              out=str(out), backend=args.backend, workers=args.workers,
                              **({} if args.batch_size is None
                                 else {"batch_size": args.batch_size}))
    seconds = time.perf_counter() - t0  # the whole flow call, outputs and reports included
    own_cpu, busy = time.process_time() - cpu0, _busy_seconds() - busy0
    flow_wps = words / seconds
    print(f"\ncorpus: {words:,} words, {summary['counts']['segments']:,} segments "
          f"({summary['counts']['codable_segments']:,} codable), backend {args.backend}, "
          f"{summary['incremental']['workers']} worker(s) on {os.cpu_count()} cores; "
          + ("model trained before (not timed)" if args.trained else
             "model trained from the codebook in the timed run"))
    if args.trained and summary["model"]["retrained"]:
        raise SystemExit(f"the trained model was not reused: {summary['model']['retrained']}")
    print(f"flow (end to end, no start-up): {seconds:.1f} s = {flow_wps:,.0f} words/s"
          f"  (target >= 150,000 on the fast path)")
    print(f"bare spacy.blank('en') tokenisation: {spacy_wps:,.0f} words/s; flow/spacy = "
          f"{flow_wps / spacy_wps:.2f} (target >= 0.33)")
    if busy is not None:
        print(f"CPU during the flow: {busy:.1f} s on all cores ({busy / seconds:.2f} cores "
              f"busy), {own_cpu:.1f} s in the flow's own process; the rest: worker "
              "processes, Prefect's server, anything else on the machine")
    if args.backend == "semantic":
        from sentence_transformers import SentenceTransformer

        from qualcode.embed import packaged_model_path

        model = SentenceTransformer(str(packaged_model_path()), device="cpu")
        t0 = time.perf_counter()
        model.encode(texts, batch_size=64)
        encode_wps = n_words / (time.perf_counter() - t0)
        codable_wps = n_words / seconds  # only the words the flow encodes
        print(f"bare SentenceTransformer.encode: {encode_wps:,.0f} words/s; flow/encode = "
              f"{flow_wps / encode_wps:.2f} (target >= 0.70); counting only the codable "
              f"words the flow encodes: {codable_wps / encode_wps:.2f}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
