"""Deployments with schedules on a real Prefect server: `prefect.yaml` and `qualcode schedule`.

The server is `prefect server start` on a free loopback port with a temporary
PREFECT_HOME (one per session, started through ``qualcode.server``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import ROOT
from .test_incremental import (
    Assets,
    corpus_without_reviews,
    make_assets,
    output_folder,
    segments,
    start_test_server,
)

pytestmark = pytest.mark.prefect


@pytest.fixture(scope="session")
def project_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from start_test_server(tmp_path_factory)


@pytest.fixture(scope="session")
def assets(tmp_path_factory: pytest.TempPathFactory) -> Assets:
    return make_assets(tmp_path_factory)


def _env(api_url: str, home: Path) -> dict[str, str]:
    env = {**os.environ, "PREFECT_API_URL": api_url, "PREFECT_HOME": str(home),
           "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    return env


def _deployment(api_url: str, name: str, timeout: float = 0.0):
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL, temporary_settings

    deadline = time.monotonic() + timeout
    with temporary_settings(updates={PREFECT_API_URL: api_url}), \
            get_client(sync_client=True) as client:
        while True:
            try:
                return client.read_deployment_by_name(name)
            except ObjectNotFound:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


def test_server_command_reports_the_running_server(project_server, tmp_path_factory):
    from qualcode import server

    home = tmp_path_factory.getbasetemp() / "prefect-server-home"
    info = server.status(home)
    assert info is not None and info.api_url == project_server
    assert info.url.startswith("http://127.0.0.1:")
    assert (home / "server.log").is_file() and (home / "server.json").is_file()
    env = {**os.environ, "PREFECT_HOME": str(home)}
    done = subprocess.run([sys.executable, "-m", "qualcode.cli", "server", "status"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and info.url in done.stdout
    assert server.start(home) == (info, False)  # reused, not started twice


def test_prefect_yaml_deploys_the_nightly_and_reports_deployments(project_server, tmp_path):
    """The team route: a process work pool and `prefect deploy --all` from the project."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "prefect.yaml", project)
    shutil.copytree(ROOT / "flows", project / "flows",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = _env(project_server, tmp_path / "home")
    prefect = [sys.executable, "-m", "prefect", "--no-prompt"]
    for command in (["work-pool", "create", "qualcode", "--type", "process", "--overwrite"],
                    ["deploy", "--all"]):
        done = subprocess.run([*prefect, *command], cwd=project, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr

    nightly = _deployment(project_server, "code-corpus/nightly")
    [schedule] = nightly.schedules
    assert schedule.active and schedule.schedule.cron == "0 2 * * *"
    assert schedule.schedule.timezone == "UTC"
    assert nightly.parameters == {"corpus": "corpus", "codebook": "codebook.yaml",
                                  "out": "outputs"}
    assert nightly.work_pool_name == "qualcode"
    assert nightly.global_concurrency_limit.limit == 1
    # runs start in the folder the deployment was made from, where the relative paths hold
    assert nightly.pull_steps == [{"prefect.deployments.steps.set_working_directory": {
        "directory": str(project.resolve())}}]
    reports = _deployment(project_server, "refresh-reports/reports")
    assert reports.schedules == []
    assert reports.parameters == {"out": "outputs", "codebook": "codebook.yaml"}


def test_schedule_command_serves_the_flow_and_runs_it(project_server, tmp_path, assets):
    """The single-researcher route: `qualcode schedule` serves the flow from one process."""
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    corpus = corpus_without_reviews(tmp_path / "corpus")
    out = output_folder(tmp_path / "out", assets.model)
    command = [sys.executable, "-m", "qualcode.cli", "schedule", "--cron", "0 2 * * *",
               "--name", "test-nightly", "--timezone", "Europe/Paris", "--corpus", str(corpus),
               "--codebook", str(assets.codebook), "--out", str(out),
               "--backend", "fast"]
    log = (tmp_path / "schedule.log").open("w")
    serving = subprocess.Popen(command, cwd=tmp_path, env=_env(project_server, tmp_path / "h"),
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deployment = _deployment(project_server, "code-corpus/test-nightly", timeout=120)
        [schedule] = deployment.schedules
        assert schedule.schedule.cron == "0 2 * * *"
        assert schedule.schedule.timezone == "Europe/Paris" and schedule.active
        assert deployment.parameters["corpus"] == str(corpus.resolve())
        assert deployment.parameters["out"] == str(out.resolve())
        assert deployment.entrypoint == "flows.code_corpus.code_corpus"

        with temporary_settings(updates={PREFECT_API_URL: project_server}):
            run = run_deployment("code-corpus/test-nightly", timeout=240)
        assert run.state is not None and run.state.is_completed(), \
            (tmp_path / "schedule.log").read_text()
        found = segments(out)
        assert found["doc_id"].nunique() == 103
        assert {"codings.csv", "report.html", "run_manifest.json"} <= {
            p.name for p in out.iterdir()}
    finally:
        serving.send_signal(signal.SIGINT)  # Ctrl-C: stop serving, pause the schedule
        try:
            serving.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(serving.pid, signal.SIGKILL)
            serving.wait()
        log.close()
