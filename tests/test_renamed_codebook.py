"""A codebook whose code and category ids are all renamed codes the corpus exactly as the
default one does (no id of the default codebook is written in Python)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import yaml

from qualcode.classify import code_segments
from qualcode.codebook import load_codebook
from qualcode.corpus import flat_segments, read_corpus
from qualcode.reviews import load_reviews
from qualcode.training import ensure_model, training_set

# Keys whose values are ids (or lists of ids); prose is left alone, so a rule phrase such
# as "commitment" keeps its words although a code is called ``commitment``.
_ID_KEYS = {"id", "category", "related", "category_pairs"}


def _renamed(value: object, mapping: dict[str, str], key: str | None = None) -> object:
    if isinstance(value, dict):
        return {k: _renamed(v, mapping, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v, mapping, key) for v in value]
    return mapping.get(value, value) if key in _ID_KEYS and isinstance(value, str) else value


def _coding(corpus: Path, codebook_path: Path, out: Path):
    book = load_codebook(codebook_path)
    segments = flat_segments(read_corpus(corpus))
    reviews = load_reviews(corpus / "reviews", book.code_ids)
    assert reviews.problems == []
    decisions = reviews.decisions()
    model, _, _ = ensure_model(book, training_set(segments, decisions), out, backend="fast")
    return book, code_segments(segments, model, book, decisions)


def test_a_renamed_codebook_codes_as_the_default_one(
    sample_corpus: Path, codebook_path: Path, tmp_path: Path
) -> None:
    data = yaml.safe_load(codebook_path.read_text(encoding="utf-8"))
    ids = [c["id"] for c in data["categories"]] + [c["id"] for c in data["codes"]]
    mapping = {old: f"c{i:02d}_{old[::-1]}" for i, old in enumerate(ids)}
    renamed_path = tmp_path / "renamed.yaml"
    renamed_path.write_text(yaml.safe_dump(_renamed(data, mapping), sort_keys=False,
                                           allow_unicode=True), encoding="utf-8")
    # the same reviews, written with the new ids
    renamed_corpus = tmp_path / "renamed_corpus"
    shutil.copytree(sample_corpus, renamed_corpus)
    for path in (renamed_corpus / "reviews").glob("*.csv"):
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.DictReader(handle))
        for row in rows:
            row["codes"] = ";".join(mapping[c.strip()] for c in row["codes"].split(";")
                                    if c.strip())
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    book, default = _coding(sample_corpus, codebook_path, tmp_path / "a")
    renamed_book, renamed = _coding(renamed_corpus, renamed_path, tmp_path / "b")

    assert renamed.code_ids == [mapping[c] for c in default.code_ids]
    assert [renamed_book.code(c).category for c in renamed.code_ids] == [
        mapping[book.code(c).category] for c in default.code_ids]
    assert renamed.segment_ids == default.segment_ids
    assert default.decisions.sum() > 50  # the sample is coded, not trivially empty
    np.testing.assert_array_equal(renamed.decisions, default.decisions)
    np.testing.assert_allclose(renamed.scores, default.scores, atol=1e-9)
    np.testing.assert_array_equal(renamed.methods, default.methods)
    assert (default.methods == "human").any() and (default.methods == "rule").any()
