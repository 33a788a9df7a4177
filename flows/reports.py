"""Reports from the coded outputs, and their Prefect artifacts (ids and counts only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from qualcode.codebook import Codebook, load_codebook
from qualcode.datasets import RUN_MANIFEST, codebook_mismatch
from qualcode.outputs import exclusive_outputs, write_json
from qualcode.report import artifact_markdown, frequency_table_rows, write_reports


@task(name="write-reports")
def write_reports_task(out: str, codebook: Codebook) -> dict[str, str]:
    written = write_reports(out, codebook)
    # Record the reports' hashes in the run's provenance next to the datasets'.
    manifest_path = Path(out) / RUN_MANIFEST
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        manifest.setdefault("outputs", {}).update(written)
        write_json(manifest_path, manifest)
    return written


@task(name="publish-artifacts")
def publish_artifacts(out: str) -> None:
    """The frequency table and a short summary, visible in the Prefect UI."""
    create_table_artifact(frequency_table_rows(out), key="qualcode-frequencies",
                          description="Segments and documents coded per code in the latest "
                                      "qualcode run (frequencies.csv: ids, names and counts)")
    create_markdown_artifact(artifact_markdown(out), key="qualcode-summary",
                             description="Summary of the latest qualcode run")


def report_outputs(out: str, codebook: Codebook) -> dict[str, str]:
    written = write_reports_task(out, codebook)
    publish_artifacts(out)
    return written


@flow(name="refresh-reports")
@exclusive_outputs
def refresh_reports(out: str = "outputs", codebook: str = "codebook.yaml") -> dict[str, Any]:
    """Regenerate every report from the existing coded outputs, without recoding."""
    out_dir = str(Path(out).resolve())
    book = load_codebook(codebook)
    problem = codebook_mismatch(out_dir, book)
    if problem:
        raise ValueError(problem)
    return {"outputs": report_outputs(out_dir, book), "out": out_dir}
