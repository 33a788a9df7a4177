"""The classifier: codebook-only and reviewed training, evidence, pickling, metrics."""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone

from qualcode.codebook import Category, Code, Codebook, Examples, Rules
from qualcode.embed import SEMANTIC, available_backends
from qualcode.model import (
    MODEL,
    RULE,
    CodebookClassifier,
    NotFittedError,
    f1_per_code,
    krippendorff_alpha_nominal,
    multilabel_targets,
)

semantic = pytest.mark.skipif(SEMANTIC not in available_backends(),
                              reason="the semantic extra is not installed")


def _book() -> Codebook:
    def code(cid: str, pos: list[str], neg: list[str], phrases: list[str]) -> Code:
        return Code(id=cid, name=cid, category="c", definition=f"passages about {cid}",
                    examples=Examples(positive=pos, negative=neg),
                    rules=Rules(phrases=phrases))

    return Codebook(name="t", version="1", categories=[Category(id="c", name="C")], codes=[
        code("money", ["The group demanded a fee at every checkpoint.",
                       "Fighters taxed each truck that crossed the bridge."],
             ["We paid our drivers on time."], ["checkpoint fee"]),
        code("weather", ["Heavy rain washed the road away.",
                         "The floods cut the route for a week."],
             ["We talked about the weather forecast for the next season."], ["monsoon"]),
    ])


TEXTS = [
    "They asked for a checkpoint fee on every lorry.",
    "Fighters taxed our trucks at the bridge, every single one.",
    "The monsoon came early this year.",
    "Floods cut the road and the trucks could not pass for days.",
    "We had lunch with the team.",
    "The group demanded money from each convoy at the gate.",
    "Rain washed away the only route to the camps.",
    "Our office moved to a new building.",
]
LABELS = [["money"], ["money"], ["weather"], ["weather"], [], ["money"], ["weather"], []]


def test_alpha_and_f1_equal_hand_computed_values() -> None:
    # 4 units: values 1,1,0,0 vs 1,0,0,0 -> n=8, n1=3, n0=5, one disagreement:
    # alpha = 1 - (8 - 1) * 2 / (2 * 5 * 3) = 1 - 7/15
    assert krippendorff_alpha_nominal([1, 1, 0, 0], [1, 0, 0, 0]) == pytest.approx(8 / 15)
    assert krippendorff_alpha_nominal([1, 0, 1], [1, 0, 1]) == 1.0
    assert np.isnan(krippendorff_alpha_nominal([0, 0], [0, 0]))
    # 5 values, 10 units, 2 disagreements: value counts a3 b6 c6 d3 e2 (n=20), so
    # sum_{c!=k} n_c n_k = 400 - 94 = 306 and alpha = 1 - 19 * 4 / 306
    a = ["a", "a", "b", "b", "d", "c", "c", "c", "e", "d"]
    b = ["b", "a", "b", "b", "b", "c", "c", "c", "e", "d"]
    assert krippendorff_alpha_nominal(a, b) == pytest.approx(1 - 19 * 4 / 306)
    truth = np.array([[1, 0], [1, 0], [0, 0]])
    pred = np.array([[1, 0], [0, 0], [1, 0]])
    assert f1_per_code(truth, pred).tolist() == [0.5, 1.0]


def test_thresholds_tuned_for_precision_when_asked() -> None:
    from qualcode.model import _f1, _tune_decision

    # 1 true positive of 3 predicted, 2 positives: F1 = 2/5; F0.5 = 1.25 / (0.5 + 3)
    pred, truth = np.array([1, 1, 1, 0]) == 1, np.array([1, 0, 0, 1])
    assert _f1(pred, truth) == pytest.approx(0.4)
    assert _f1(pred, truth, 0.5) == pytest.approx(1.25 / 3.5)
    # scores: 2 sure positives, then 2 negatives and 2 positives around 0.5
    score = np.array([0.9, 0.9, 0.52, 0.52, 0.45, 0.45, 0.1, 0.1])
    truth = np.array([1, 1, 0, 0, 1, 1, 0, 0])
    none = np.zeros(len(score))
    # F1: 0.4 (all 4 positives, 2 false ones) beats 0.55 (2 of 4 found): 0.8 vs 0.67;
    # F0.5 weighs the 2 false positives more: 0.55 and up, precision 1
    assert _tune_decision(score, none, truth, use_rules=False)[0] == pytest.approx(0.45)
    assert _tune_decision(score, none, truth, use_rules=False, beta=0.5)[0] >= 0.55


def test_codebook_only_codes_without_rules_have_a_lower_threshold() -> None:
    # Rules decide where they hit, so the model adds a code only when very sure; a code
    # without rules has only the model, and a lower bar.
    book = _book()
    book.codes[1].rules = Rules()
    model = CodebookClassifier(book, backend="fast").fit([], None)
    assert model.thresholds_.tolist() == [model.codebook_only_threshold,
                                          model.ruleless_threshold]
    assert model.ruleless_threshold < model.codebook_only_threshold
    # with reviews (too few to tune on), thresholds no longer depend on rules
    reviewed = CodebookClassifier(book, backend="fast").fit(TEXTS, LABELS)
    assert reviewed.thresholds_.tolist() == [reviewed.threshold] * 2


def test_labelled_segments_of_the_codebook_teach_the_model(monkeypatch) -> None:
    # A code with neither rules nor examples is learned from the codebook's labelled
    # segments alone, without any review; reviews still count as reviews.
    from qualcode.codebook import LabelledSegment

    book = _book()
    book.codes[1].rules, book.codes[1].examples = Rules(), Examples()
    texts = TEXTS * 2  # 16 segments: each code has 6 positives, enough to tune on
    book.labelled_segments = [LabelledSegment(id=f"doc{i % 4}:{i}", text=t)
                              for i, t in enumerate(texts)]
    for code in book.codes:
        code.segments = [f"doc{i % 4}:{i}" for i, t in enumerate(texts)
                         if code.id in LABELS[i % len(LABELS)]]
    import qualcode.model

    betas = []  # without reviews thresholds are tuned for F0.5 (precision first), with: F1
    tune = qualcode.model._tune_decision
    monkeypatch.setattr(qualcode.model, "_tune_decision",
                        lambda *a, **k: betas.append(k["beta"]) or tune(*a, **k))
    model = CodebookClassifier(book, backend="fast", inner_folds=2,
                               min_positives_to_tune=4).fit([], None)
    assert (model.n_reviewed_, model.n_labelled_) == (0, 16) and betas == [0.5, 0.5]
    assert model.tuned_.all()
    new = ["Floods washed the road away again.", "We had lunch at the new building."]
    assert model.predict(new)[:, 1].tolist() == [1, 0]
    without = CodebookClassifier(book, backend="fast", segments_weight=0).fit([], None)
    assert without.n_labelled_ == 0 and without.predict(new)[:, 1].tolist() == [0, 0]
    reviewed = CodebookClassifier(book, backend="fast", inner_folds=2,
                                  min_positives_to_tune=4).fit(TEXTS[:3], LABELS[:3])
    assert (reviewed.n_reviewed_, reviewed.n_labelled_) == (3, 19)
    assert betas[2:] == [1.0, 1.0]


def test_codebook_only_fast_backend_rules_and_evidence() -> None:
    model = CodebookClassifier(_book(), backend="fast").fit([], None)
    assert model.backend_ == "fast" and model.classes_ == ["money", "weather"]
    assert model.thresholds_.tolist() == [model.codebook_only_threshold] * 2
    pred = model.predict(TEXTS[:3])
    assert pred[0].tolist() == [1, 0] and pred[2].tolist() == [0, 1]
    [first], _, [third] = model.explain(TEXTS[:3])
    assert (first.code_id, first.method, first.matched) == ("money", RULE, ("checkpoint fee",))
    assert third.matched == ("monsoon",) and "monsoon" in third.text
    assert first.example in _book().codes[0].examples.positive
    restored = pickle.loads(pickle.dumps(model))
    assert np.array_equal(restored.predict(TEXTS), model.predict(TEXTS))


def test_unfitted_and_bad_labels_are_refused() -> None:
    with pytest.raises(NotFittedError):
        CodebookClassifier(_book()).ready()
    with pytest.raises(NotFittedError):
        CodebookClassifier(_book(), backend="fast").predict(["x"])
    with pytest.raises(ValueError, match="unknown code id 'nope'"):
        CodebookClassifier(_book(), backend="fast").fit(["x"], [["nope"]])
    with pytest.raises(ValueError, match="codebook"):
        CodebookClassifier(None).fit([], None)


@semantic
def test_learns_from_reviews_explains_and_pickles(tmp_path: Path) -> None:
    model = CodebookClassifier(_book(), cache_dir=str(tmp_path), min_positives_to_tune=2,
                               inner_folds=2)
    model.fit(TEXTS, LABELS, groups=list(range(len(TEXTS))))
    assert model.tuned_.all()
    y = multilabel_targets(LABELS, model.classes_)
    assert (model.predict(TEXTS) == y).mean() >= 0.85
    new = ["Each lorry had to pay the commander's men before the barrier opened.",
           "A storm flooded the valley road."]
    proba = model.predict_proba(new)
    assert proba.shape == (2, 2) and proba[0, 0] > proba[0, 1] and proba[1, 1] > proba[1, 0]
    applied = model.explain(new)
    assert all(e.method in (RULE, MODEL) for row in applied for e in row)
    for row, text in zip(applied, new, strict=True):
        for e in row:
            assert e.sentence in text and e.score >= model.thresholds_[
                model.classes_.index(e.code_id)]
    restored = pickle.loads(pickle.dumps(model))
    assert getattr(restored, "_matcher", None) is None  # rebuilt where it is used
    restored.ready()  # built now, e.g. before forking the processes that score
    assert restored._matcher.n_rules == 2 and len(restored._example_cache) == 2
    assert np.allclose(restored.predict_proba(new), proba)
    params = clone(model).get_params()
    assert params["min_positives_to_tune"] == 2 and params["codebook"] == model.codebook
    assert len(pickle.dumps(model)) < 5_000_000  # the encoder is reloaded, not pickled


BLIND = Path(__file__).resolve().parents[1] / "benchmarks" / "blind"


def _labelled(folder: Path) -> tuple[list[str], list[list[str]], list[str]]:
    """Texts, gold codes and doc ids of a labelled set (``corpus/`` + ``gold.csv``)."""
    from qualcode.ingest import ingest_corpus
    from qualcode.segment import segment_documents

    segments = {s.segment_id: s for s in
                segment_documents(ingest_corpus(folder / "corpus").documents)}
    with open(folder / "gold.csv", encoding="utf-8", newline="") as fh:
        gold = list(csv.DictReader(fh))
    return ([segments[r["segment_id"]].text for r in gold],
            [[c for c in r["codes"].split(";") if c] for r in gold], [r["doc_id"] for r in gold])


@pytest.mark.parametrize("reviews", ["devset", "blind_bld"])
@pytest.mark.parametrize("backend", ["fast", pytest.param("semantic", marks=semantic)])
def test_model_beats_its_rules_on_held_back_segments(request: pytest.FixtureRequest,
                                                     codebook_path: Path, tmp_path: Path,
                                                     backend: str, reviews: str) -> None:
    # The held-back segments are a blind set (benchmarks/blind/blf) that no one writing
    # the rules has read: the default rules were written while reading every dev segment
    # (and the other blind sets), so no dev segment is held back from them. Trained on the
    # dev set's gold (or on a blind set), the model must code blf better than its rules.
    from qualcode.codebook import load_codebook

    book = load_codebook(codebook_path)
    train = request.getfixturevalue("devset") if reviews == "devset" else BLIND / "bld"
    texts, codes, docs = _labelled(train)
    model = CodebookClassifier(book, backend=backend, cache_dir=str(tmp_path))
    model.fit(texts, multilabel_targets(codes, book.code_ids), groups=docs)
    held_back, held_codes, _ = _labelled(BLIND / "blf")
    truth = multilabel_targets(held_codes, book.code_ids)
    rules = model._rule_matcher()
    hits = rules.hit_matrix(rules.match(held_back)).astype(int)
    model_f1 = f1_per_code(truth, model.predict(held_back)).mean()
    rules_f1 = f1_per_code(truth, hits).mean()
    print(f"held-back blind segments: model macro F1 {model_f1:.3f}, rules {rules_f1:.3f}")
    assert model_f1 > rules_f1


def test_fitting_the_folds_in_child_processes_changes_nothing(monkeypatch) -> None:
    # fit() trains the model and its inner folds' models at once in forked processes;
    # liblinear seeds a process-wide random generator, so this must equal one by one.
    from qualcode import parallel

    texts, labels = TEXTS * 3, LABELS * 3
    groups = [i % 6 for i in range(len(texts))]

    def fitted() -> CodebookClassifier:
        return CodebookClassifier(_book(), backend="fast", inner_folds=3,
                                  min_positives_to_tune=4).fit(texts, labels, groups=groups)

    parallel_model = fitted()
    monkeypatch.setattr(parallel, "auto_workers", lambda: 1)
    serial_model = fitted()
    assert parallel_model.tuned_.all()
    np.testing.assert_array_equal(parallel_model.thresholds_, serial_model.thresholds_)
    np.testing.assert_array_equal(parallel_model.predict_proba(texts),
                                  serial_model.predict_proba(texts))
