"""What the flow's steps cost next to bare tokenisation, in one process (no Prefect).

    python benchmarks/step_costs.py [--words 1000000]

Generates a corpus, trains the fast model from the codebook (not timed), then times on
the same codable text: bare ``spacy.blank("en")`` tokenisation, reading and segmenting
the corpus, and scoring it (tokenising again, rules, word features, model, evidence).
Each step is printed as a multiple of tokenisation's time: issue 3 asks the whole flow for
a third of tokenisation's throughput, so the steps' multiples, plus writing and Prefect,
over the cores, bound what the flow can reach. A tool for deciding what to speed up.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from generate_corpus import generate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=1_000_000)
    args = parser.parse_args()

    import spacy

    from qualcode.classify import code_segments
    from qualcode.codebook import load_codebook
    from qualcode.corpus import flat_segments, read_corpus
    from qualcode.model import CodebookClassifier

    work = Path(tempfile.mkdtemp(prefix="qualcode-steps-"))
    try:
        generate(work / "corpus", args.words)
        book = load_codebook(ROOT / "codebook.yaml")
        model = CodebookClassifier(book, backend="fast").fit([], None)
        model.ready()

        t0 = time.perf_counter()
        batch = read_corpus(work / "corpus")
        read = time.perf_counter() - t0
        segments = [s for s in flat_segments(batch) if s.codable]
        texts = [s.text for s in segments]
        t0 = time.perf_counter()
        for _ in spacy.blank("en").pipe(texts, batch_size=256):
            pass
        tokenise = time.perf_counter() - t0
        t0 = time.perf_counter()
        code_segments(segments, model, book)
        score = time.perf_counter() - t0
    finally:
        shutil.rmtree(work, ignore_errors=True)
    words = sum(len(t.split()) for t in texts)
    print(f"{len(segments):,} codable segments, {words:,} codable words")
    print(f"bare tokenisation      {tokenise:6.2f} s  = 1.0  ({words / tokenise:,.0f} words/s)")
    print(f"reading + segmenting   {read:6.2f} s  = {read / tokenise:.1f} x tokenisation")
    print(f"scoring                {score:6.2f} s  = {score / tokenise:.1f} x tokenisation")


if __name__ == "__main__":
    main()
