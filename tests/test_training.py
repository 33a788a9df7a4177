"""Training data, model reuse and retraining, human overrides and evaluation numbers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from qualcode.classify import code_segments
from qualcode.codebook import load_codebook
from qualcode.documents import Segment
from qualcode.evaluate import CrossValidation, code_metrics, evaluation_rows, trust_status
from qualcode.model import CodebookClassifier
from qualcode.training import ensure_model, training_set

CODEBOOK = """\
name: tiny
version: "1"
categories:
  - id: acts
    name: Acts
codes:
  - id: pay
    name: Payment
    category: acts
    definition: Someone pays money or a fee.
    examples:
      positive: ["They paid a fee at the gate.", "We paid the toll in cash."]
      negative: ["The weather was cold."]
    rules:
      phrases: ["paid a fee"]
  - id: wait
    name: Waiting
    category: acts
    definition: Someone waits or is delayed.
    examples:
      positive: ["We waited three days at the checkpoint.", "The convoy was delayed."]
      negative: ["They paid quickly."]
    rules:
      phrases: ["waited"]
"""


@pytest.fixture
def book(tmp_path: Path):
    path = tmp_path / "codebook.yaml"
    path.write_text(CODEBOOK, encoding="utf-8")
    return load_codebook(path)


def _seg(doc: str, n: int, text: str, codable: bool = True) -> Segment:
    return Segment(f"{doc}:{n}", doc, "interview", "Respondent", n, 0, len(text), text, codable)


SEGMENTS = [
    _seg("A", 1, "We paid a fee at the bridge."),
    _seg("A", 2, "Then we waited two days."),
    _seg("B", 1, "Nothing happened that week."),
    _seg("B", 2, "Where did you go?", codable=False),
]


def test_training_set_keeps_reviewed_codable_segments(book) -> None:
    decisions = {"A:1": frozenset({"pay"}), "B:2": frozenset(), "Z:9": frozenset({"wait"})}
    data = training_set(SEGMENTS, decisions)
    assert data.segment_ids == ["A:1"]
    assert data.groups == ["A"] and data.labels == [frozenset({"pay"})]
    assert data.unmatched == 2  # a non-codable segment and an unknown one


def test_model_is_reused_and_retrained_only_when_needed(book, tmp_path: Path) -> None:
    out = tmp_path / "out"
    data = training_set(SEGMENTS, {"A:1": frozenset({"pay"})})
    _, meta, reason = ensure_model(book, data, out, backend="fast")
    assert reason == "no saved model"
    assert (out / "model" / "model.pkl").is_file()
    _, meta2, reason2 = ensure_model(book, data, out, backend="fast")
    assert reason2 is None and meta2["trained_at"] == meta["trained_at"]
    changed = training_set(SEGMENTS, {"A:1": frozenset({"pay"}), "A:2": frozenset({"wait"})})
    _, _, reason3 = ensure_model(book, changed, out, backend="fast")
    assert reason3 == "the reviews changed"


def test_a_training_cut_short_leaves_no_model_to_take_for_the_old_one(
        book, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from qualcode import training

    out = tmp_path / "out"
    old = training_set(SEGMENTS, {})
    ensure_model(book, old, out, backend="fast")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # stopped after the new model.pkl, before its metadata

    monkeypatch.setattr(training, "write_json", crash)
    with pytest.raises(KeyboardInterrupt):
        ensure_model(book, training_set(SEGMENTS, {"A:1": frozenset({"pay"})}), out,
                     backend="fast")
    monkeypatch.undo()
    # the old data again: the new model.pkl must not pass for the old model
    _, meta, reason = ensure_model(book, old, out, backend="fast")
    assert reason == "no saved model" and meta["reviewed_segments"] == 0


def test_a_saved_model_that_cannot_be_unpickled_is_retrained(book, tmp_path: Path) -> None:
    import pickle

    out = tmp_path / "out"
    data = training_set(SEGMENTS, {})
    ensure_model(book, data, out, backend="fast")
    # as a model pickled by a qualcode whose module was renamed since
    broken = pickle.dumps(CodebookClassifier(book, backend="fast")).replace(
        b"qualcode.model", b"qualcode.gone_")
    (out / "model" / "model.pkl").write_bytes(broken)
    model, _, reason = ensure_model(book, data, out, backend="fast")
    assert reason == "the saved model could not be loaded"
    assert list(model.classes_) == ["pay", "wait"]
    assert ensure_model(book, data, out, backend="fast")[2] is None  # the new one is used
    # a stale model is not even unpickled: its reason is the staleness
    (out / "model" / "model.pkl").write_bytes(broken)
    changed = training_set(SEGMENTS, {"A:1": frozenset({"pay"})})
    assert ensure_model(book, changed, out, backend="fast")[2] == "the reviews changed"


def test_an_evaluation_of_an_earlier_model_is_removed(book, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "evaluation.csv").write_text("code_id,status\npay,auto\n")  # an earlier model's
    data = training_set(SEGMENTS, {"A:1": frozenset({"pay"})})  # too few documents
    _, meta, _ = ensure_model(book, data, out, backend="fast", evaluate=True)
    assert meta["evaluation"] == {}
    assert not (out / "evaluation.csv").exists()
    # the same without evaluating: kept while the model is reused, removed on retraining
    (out / "evaluation.csv").write_text("code_id,status\npay,auto\n")
    assert ensure_model(book, data, out, backend="fast")[2] is None
    assert (out / "evaluation.csv").exists()
    changed = training_set(SEGMENTS, {"A:1": frozenset({"wait"})})
    assert ensure_model(book, changed, out, backend="fast")[2] == "the reviews changed"
    assert not (out / "evaluation.csv").exists()


def test_changed_codebook_and_other_code_ids_invalidate_the_model(book, tmp_path: Path) -> None:
    out = tmp_path / "out"
    data = training_set(SEGMENTS, {})
    ensure_model(book, data, out, backend="fast")
    edited = tmp_path / "edited.yaml"
    edited.write_text(CODEBOOK.replace("Someone waits", "A person waits"), encoding="utf-8")
    _, _, reason = ensure_model(load_codebook(edited), data, out, backend="fast")
    assert reason == "the codebook changed"
    renamed = tmp_path / "renamed.yaml"
    renamed.write_text(CODEBOOK.replace("id: wait", "id: delay"), encoding="utf-8")
    model, meta, reason = ensure_model(load_codebook(renamed), data, out, backend="fast")
    assert reason == "the saved model was trained for other code ids"
    assert meta["code_ids"] == ["pay", "delay"] and list(model.classes_) == ["pay", "delay"]
    with pytest.raises(ValueError, match="other code ids"):
        code_segments(SEGMENTS, model, book)


def test_human_decisions_override_the_classifier(book, tmp_path: Path) -> None:
    model, _, _ = ensure_model(book, training_set(SEGMENTS, {}), tmp_path, backend="fast")
    human = {"A:1": frozenset({"wait"}), "B:1": frozenset()}
    result = code_segments(SEGMENTS, model, book, human)
    assert result.segment_ids == ["A:1", "A:2", "B:1"]  # the question is not coded
    row = {sid: i for i, sid in enumerate(result.segment_ids)}
    assert result.decisions[row["A:1"]].tolist() == [False, True]
    assert result.methods[row["A:1"], 1] == "human"
    assert not result.decisions[row["B:1"]].any()
    # the rule for 'wait' fires on the unreviewed segment, with its evidence
    assert result.decisions[row["A:2"], 1]
    assert "waited" in result.evidence[row["A:2"]]["wait"]


def test_metrics_on_a_hand_checked_example() -> None:
    truth = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
    pred = np.array([1, 1, 0, 1, 0, 0, 0, 0, 0, 0])
    m = code_metrics(truth, pred)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (2, 1, 1, 6)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["fpr"] == pytest.approx(1 / 7)
    # kappa: po = 0.8, pe = 0.3*0.3 + 0.7*0.7 = 0.58 -> 0.22 / 0.42
    assert m["kappa"] == pytest.approx(0.22 / 0.42)
    # alpha: 20 values, 6 ones and 14 zeros; 2 disagreeing units -> 4 off-diagonal pairs
    # alpha = 1 - (n-1) * D_o / D_e = 1 - 19 * 4 / (2 * 6 * 14)
    assert m["alpha"] == pytest.approx(1 - 19 * 4 / (2 * 6 * 14))


def test_evaluation_rows_and_trust_status(book) -> None:
    truth = np.array([[1, 0]] * 6 + [[0, 1]] * 30)
    model = truth.copy()
    model[0, 0] = 0  # one miss on 'pay'
    cv = CrossValidation(truth, model, np.zeros_like(truth), folds=5)
    rows = {r["code_id"]: r for r in evaluation_rows(book, cv)}
    assert rows["pay"]["support"] == 6 and rows["pay"]["recall"] == pytest.approx(5 / 6)
    assert rows["wait"]["f1"] == 1.0 and rows["wait"]["status"] == "auto"
    assert rows["macro_avg"]["f1"] == pytest.approx((10 / 11 + 1.0) / 2)
    assert math.isnan(rows["pay"]["rules_precision"])  # rules never fired
    assert trust_status(0.9, support=4, reviewed=100) == "human"
    assert trust_status(0.7, support=10, reviewed=100) == "check"
    assert trust_status(0.5, support=10, reviewed=100) == "human"
