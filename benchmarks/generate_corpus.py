"""Generate a large synthetic corpus (fictional, randomised) for throughput benchmarks.

    python benchmarks/generate_corpus.py OUT_DIR --words 1000000

Transcripts (txt with front matter, timestamped txt, vtt, srt) and an excerpt table, built
from shuffled sentences of the project's own sample corpus so that the language is
realistic while the documents are new.
"""

from __future__ import annotations

import argparse
import csv
import random
import re
from pathlib import Path

from qualcode.ingest import ingest_corpus
from qualcode.segment import segment_documents

ROOT = Path(__file__).resolve().parents[1]
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _sentences(corpus: Path) -> list[str]:
    segments = segment_documents(ingest_corpus(corpus).documents)
    found = [s for seg in segments if seg.codable for s in _SENTENCE.split(seg.text)]
    return [" ".join(s.split()) for s in found if len(s.split()) >= 4]


def _turn(rng: random.Random, sentences: list[str], low: int, high: int) -> str:
    return " ".join(rng.choice(sentences) for _ in range(rng.randint(low, high)))


def generate(out: Path, words: int, seed: int = 7) -> int:
    """Write about ``words`` words of corpus into ``out``; return the words written."""
    rng = random.Random(seed)
    sentences = _sentences(ROOT / "corpus")
    (out / "transcripts").mkdir(parents=True, exist_ok=True)
    (out / "literature").mkdir(parents=True, exist_ok=True)
    written = 0
    n = 0
    rows = []
    while written < words:
        n += 1
        kind = n % 5
        if kind == 4:
            for _ in range(20):
                text = _turn(rng, sentences, 1, 4)
                rows.append([f"GEN-LIT-{len(rows) + 1:06d}", text, "Author, A.", "2020",
                             "A generated title", str(rng.randint(1, 300)), "other"])
                written += len(text.split())
            continue
        turns = []
        for t in range(rng.randint(8, 14)):
            speaker = "Interviewer" if t % 2 == 0 else "Respondent"
            text = _turn(rng, sentences, 1, 2) if t % 2 == 0 else _turn(rng, sentences, 3, 9)
            turns.append((speaker, text))
            written += len(text.split())
        stem = f"gen_{n:05d}"
        if kind == 0:
            body = "\n\n".join(f"{s}: {t}" for s, t in turns)
            text = f"---\ndoc_id: GEN-{n:05d}\ncase: other\n---\n\n{body}\n"
            (out / "transcripts" / f"{stem}.txt").write_text(text, encoding="utf-8")
        elif kind == 1:
            body = "\n\n".join(f"[00:{i:02d}:00] {s.upper()}: {t}" for i, (s, t) in
                               enumerate(turns))
            (out / "transcripts" / f"{stem}.txt").write_text(body + "\n", encoding="utf-8")
        elif kind == 2:
            cues = "\n\n".join(f"00:{i // 60:02d}:{i % 60:02d}.000 --> 00:{i // 60:02d}:"
                               f"{i % 60:02d}.900\n<v {s}>{t}" for i, (s, t) in enumerate(turns))
            (out / "transcripts" / f"{stem}.vtt").write_text(f"WEBVTT\n\n{cues}\n",
                                                             encoding="utf-8")
        else:
            cues = "\n\n".join(f"{i + 1}\n00:00:{i:02d},000 --> 00:00:{i:02d},900\n{s}: {t}"
                               for i, (s, t) in enumerate(turns))
            (out / "transcripts" / f"{stem}.srt").write_text(cues + "\n", encoding="utf-8")
    with (out / "literature" / "excerpts.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["excerpt_id", "text", "author", "year", "title", "page", "case"])
        writer.writerows(rows)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--words", type=int, default=1_000_000)
    args = parser.parse_args()
    print(f"wrote {generate(args.out, args.words):,} words to {args.out}")


if __name__ == "__main__":
    main()
