"""What a researcher meets around `qualcode server` and `qualcode schedule`: a taken port,
two starts at once, a dead PREFECT_API_URL, a second `schedule` of the same deployment,
stopping `schedule`, a project server that goes away under it, `server status`.

Real subprocesses of the CLI, against the session's project server (``prefect server
start`` through ``qualcode.server``) or one of their own.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qualcode import server

from .conftest import ROOT
from .test_incremental import (
    Assets,
    corpus_without_reviews,
    make_assets,
    output_folder,
    start_test_server,
)

pytestmark = pytest.mark.prefect

QUALCODE = [sys.executable, "-m", "qualcode.cli"]


@pytest.fixture(scope="session")
def project_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from start_test_server(tmp_path_factory)


@pytest.fixture(scope="session")
def assets(tmp_path_factory: pytest.TempPathFactory) -> Assets:
    return make_assets(tmp_path_factory)


def _env(home: Path, **more: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    return {**env, "PREFECT_HOME": str(home), "PREFECT_RUNNER_POLL_FREQUENCY": "1", **more}


def _qualcode(*args: str, env: dict[str, str], cwd: Path, timeout: float = 120
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*QUALCODE, *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def _serve(args: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen([*QUALCODE, "schedule", *args], env=env, cwd=cwd, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _finish(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _children(pid: int) -> list[str]:
    """The command lines of ``pid``'s child processes."""
    found = subprocess.run(["ps", "-o", "args=", "--ppid", str(pid)], capture_output=True,
                           text=True, timeout=10)
    return [line for line in found.stdout.splitlines() if line.strip()]


def _wait_for(what, timeout: float, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := what():
            return found
        time.sleep(every)
    return what()


def _deployment(api_url: str, name: str):
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}), \
            get_client(sync_client=True) as client:
        try:
            return client.read_deployment_by_name(name)
        except ObjectNotFound:
            return None


def test_a_dead_prefect_api_url_is_one_line_at_once(tmp_path):
    with socket.socket() as sock:  # a port where nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    corpus = corpus_without_reviews(tmp_path / "corpus")
    env = _env(tmp_path / "home", PREFECT_API_URL=f"http://127.0.0.1:{port}/api")
    started = time.monotonic()
    codebook = str(ROOT / "codebook.yaml")
    done = _qualcode("run", "--corpus", str(corpus), "--out", str(tmp_path / "out"),
                     "--codebook", codebook, "--backend", "fast", env=env, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith("error: no Prefect server answers at PREFECT_API_URL=")
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert time.monotonic() - started < 30
    assert not (tmp_path / "out").exists()
    done = _qualcode("schedule", "--cron", "0 2 * * *", "--corpus", str(corpus),
                     "--codebook", codebook, env=env, cwd=tmp_path)
    assert done.returncode == 2 and "no Prefect server answers" in done.stderr


def test_server_start_on_a_taken_port_says_so(tmp_path):
    env = _env(tmp_path / "home")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        done = _qualcode("server", "start", "--port", str(port), env=env, cwd=tmp_path)
    assert done.returncode == 1
    assert f"port {port} on 127.0.0.1 cannot be used" in done.stderr
    assert "another program" in done.stderr
    assert not (tmp_path / "home" / server.STATE_FILE).exists()
    done = _qualcode("server", "stop", env=env, cwd=tmp_path)
    assert done.returncode == 0 and "no Prefect server was running" in done.stdout


def test_two_starts_at_once_start_one_server(tmp_path):
    env = _env(tmp_path / "home")
    starts = [subprocess.Popen([*QUALCODE, "server", "start"], env=env, cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
              for _ in range(2)]
    try:
        said = [start.communicate(timeout=180)[0] for start in starts]
        assert [start.returncode for start in starts] == [0, 0], said
        info = server.status(tmp_path / "home")
        assert info is not None
        assert all(f"pid {info.pid}," in text for text in said), said
        assert sorted(text.split()[0] for text in said) == ["already", "started"]
    finally:
        for start in starts:
            if start.poll() is None:
                start.kill()
        server.stop(tmp_path / "home")


def test_schedule_serves_on_the_project_server_and_stops_cleanly(
        project_server, tmp_path, tmp_path_factory, assets):
    """No PREFECT_API_URL: `schedule` finds the project server through PREFECT_HOME, serves
    there (not on a temporary server, where schedules never fire), refuses a second
    `schedule` of the same deployment, leaves no process behind after a run, shows its
    runs in `server status`, and stops on Ctrl-C at once."""
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.code_corpus import code_corpus
    from flows.deployments import FLOW_NAME

    assert code_corpus.name == FLOW_NAME
    home = tmp_path_factory.getbasetemp() / "prefect-server-home"  # the session's server
    env = _env(home)
    corpus = corpus_without_reviews(tmp_path / "corpus")
    out = output_folder(tmp_path / "out", assets.model)
    options = ["--cron", "0 2 * * *", "--name", "edges", "--codebook", str(assets.codebook),
               "--backend", "fast", "--workers", "2", "--batch-size", "50"]
    log = tmp_path / "schedule.log"
    serving = _serve([*options, "--corpus", "corpus", "--out", "out"], env, tmp_path, log)
    try:
        deployment = _wait_for(lambda: _deployment(project_server, f"{FLOW_NAME}/edges"), 120)
        assert deployment is not None, log.read_text()
        assert deployment.parameters["corpus"] == str(corpus.resolve())
        assert deployment.parameters["out"] == str(out.resolve())
        assert _wait_for(lambda: "served (" in _qualcode(
            "server", "status", env=env, cwd=tmp_path).stdout, 30)

        second = _qualcode("schedule", *options, "--corpus", str(corpus), "--out",
                           str(tmp_path / "o2"), env=env, cwd=tmp_path)
        assert second.returncode == 2, second.stdout + second.stderr
        assert "is being served by another `qualcode schedule`" in second.stderr
        assert _deployment(project_server, f"{FLOW_NAME}/edges").parameters["out"] == \
            str(out.resolve())

        with temporary_settings(updates={PREFECT_API_URL: project_server}):
            run = run_deployment(f"{FLOW_NAME}/edges", timeout=240)
            failed = run_deployment(f"{FLOW_NAME}/edges", timeout=120,
                                    parameters={"corpus": str(tmp_path / "gone")})
        assert run.state is not None and run.state.is_completed(), log.read_text()
        assert failed.state is not None and failed.state.is_failed()
        assert (out / "codings.csv").is_file()
        # the run's process and its worker processes have ended (not waiting forever)
        assert _wait_for(lambda: not any("multiprocessing.spawn" in child or "fork" in child
                                          for child in _children(serving.pid)), 20), \
            _children(serving.pid)

        status = _qualcode("server", "status", env=env, cwd=tmp_path)
        assert status.returncode == 0
        assert f"deployment {FLOW_NAME}/edges: cron '0 2 * * *'" in status.stdout
        assert f"'{failed.name}'" in status.stdout
        assert f"corpus folder '{tmp_path / 'gone'}' does not exist" in status.stdout
        assert f"'{run.name}' (deployment {FLOW_NAME}/edges) Completed" in status.stdout

        text = log.read_text()
        assert "ephemeral" not in text and "temporary server" not in text, text
        serving.send_signal(signal.SIGINT)
        assert serving.wait(timeout=30) == 0, log.read_text()
        assert "Stopped serving 'code-corpus/edges': its schedule is paused" in log.read_text()
        assert _deployment(project_server, f"{FLOW_NAME}/edges").paused
    finally:
        _finish(serving)


def test_schedule_ends_when_the_project_server_goes(tmp_path, assets):
    """A server that dies (or `qualcode server stop`) ends `schedule` at once, status 1:
    it would otherwise ask a dead address for runs forever."""
    home = tmp_path / "home"
    env = _env(home)
    corpus = corpus_without_reviews(tmp_path / "corpus")
    log = tmp_path / "schedule.log"
    serving = _serve(["--cron", "0 2 * * *", "--corpus", str(corpus), "--codebook",
                      str(assets.codebook), "--out", str(tmp_path / "out"), "--backend",
                      "fast"], env, tmp_path, log)
    try:
        assert _wait_for(lambda: "is being served" in log.read_text(), 180), log.read_text()
        info = server.status(home)
        assert info is not None
        os.kill(info.pid, signal.SIGKILL)
        started = time.monotonic()
        assert serving.wait(timeout=30) == 1, log.read_text()
        assert time.monotonic() - started < 20
        text = log.read_text()
        assert f"error: the project's Prefect server ({info.url}, pid {info.pid}) has " \
               "stopped" in text
        assert "Run `qualcode schedule` again" in text
    finally:
        _finish(serving)
        server.stop(home)
