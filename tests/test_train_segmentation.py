"""``qualcode train`` / ``evaluate`` segment the corpus as the coding run did."""

from __future__ import annotations

import json
from pathlib import Path

from qualcode import cli
from qualcode.segment import DEFAULT_MAX_TURN_CHARS
from qualcode.speakers import DEFAULT_INTERVIEWER_LABELS

ROOT = Path(__file__).resolve().parents[1]
TRANSCRIPT = """Researcher: How did the talks about the crossing go?

Respondent: We negotiated access through the local council, and the elders agreed to it.

Researcher: And then?

Respondent: They threatened to suspend the programme unless the checkpoint reopened.
"""


def _args(*argv: str):
    return cli.build_parser().parse_args(["train", *argv])


def test_the_last_runs_settings_are_used_unless_given(tmp_path: Path) -> None:
    corpus, out = tmp_path / "corpus", tmp_path / "outputs"
    corpus.mkdir()
    out.mkdir()
    (out / "run_manifest.json").write_text(json.dumps({"parameters": {
        "corpus": str(corpus.resolve()), "interviewer_labels": ["Researcher"],
        "max_turn_chars": 900}}), encoding="utf-8")
    paths = ["--corpus", str(corpus), "--out", str(out)]
    assert cli._segmentation(_args(*paths)) == {"interviewer_labels": ["Researcher"],
                                                "max_turn_chars": 900}
    assert cli._segmentation(_args(*paths, "--interviewer-labels", " Q, Host ,",
                                   "--max-turn-chars", "500")) == {
        "interviewer_labels": ["Q", "Host"], "max_turn_chars": 500}
    defaults = {"interviewer_labels": list(DEFAULT_INTERVIEWER_LABELS),
                "max_turn_chars": DEFAULT_MAX_TURN_CHARS}
    other = tmp_path / "other"
    other.mkdir()  # outputs of a run on another corpus say nothing about this one
    assert cli._segmentation(_args("--corpus", str(other), "--out", str(out))) == defaults
    (out / "run_manifest.json").write_text("{half a manifest", encoding="utf-8")
    assert cli._segmentation(_args(*paths)) == defaults


def test_train_segments_with_the_labels_and_names_a_reviewed_interviewer_turn(
        tmp_path: Path, prefect_harness) -> None:
    from flows.train import train_model

    corpus = tmp_path / "corpus"
    (corpus / "reviews").mkdir(parents=True)
    (corpus / "int1.txt").write_text(TRANSCRIPT, encoding="utf-8")
    (corpus / "reviews" / "ana.csv").write_text(
        "segment_id,codes,coder\nint1:2,,ana\nint1:3,,ana\n", encoding="utf-8")
    result = train_model(corpus=str(corpus), codebook=str(ROOT / "codebook.yaml"),
                         out=str(tmp_path / "outputs"), backend="fast", evaluate=False,
                         interviewer_labels=["Researcher"])
    assert result["reviewed_segments"] == 1  # int1:2; int1:3 is the researcher's
    assert result["review_problems"] == [
        "reviews/ana.csv:3: segment 'int1:3' is a turn of 'Researcher', an interviewer label, "
        "and interviewer turns are not coded, so the decision was not used — correct the "
        "segment id, or delete the row; if this speaker is no interviewer, run with "
        "--interviewer-labels that leave the label out"]
    # with the default labels 'Researcher' is a speaker like any other: both are used
    result = train_model(corpus=str(corpus), codebook=str(ROOT / "codebook.yaml"),
                         out=str(tmp_path / "outputs"), backend="fast", evaluate=False)
    assert result["reviewed_segments"] == 2 and result["review_problems"] == []
