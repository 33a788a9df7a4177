"""A project-local Prefect server: start it in the background, reuse it, stop it.

Schedules only fire against a running Prefect server, and runs recorded by a running
server are faster (no temporary server per run) and keep their full history. This module
runs ``prefect server start`` on a free loopback port with the project's ``PREFECT_HOME``
(``./.prefect`` by default), in its own session so that it outlives the command that
started it, and keeps its pid, port and log under ``PREFECT_HOME``:

- ``server.json``: pid, port, URLs, start time;
- ``server.log``: the server's output.

It does not import Prefect (the library never does); it only starts the command.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

HOST = "127.0.0.1"
STATE_FILE = "server.json"
LOG_FILE = "server.log"
# Same privacy defaults as flows/__init__.py, for the server process.
SERVER_ENV = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    "PREFECT_LOGGING_TO_API_ENABLED": "false",
}


class ServerError(RuntimeError):
    """The project server could not be started or stopped; the message says what to do."""


@dataclass(slots=True)
class ServerInfo:
    pid: int
    port: int
    home: str
    started: str

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"


def prefect_home(home: str | os.PathLike[str] | None = None) -> Path:
    """``home``, else ``$PREFECT_HOME``, else ``./.prefect`` (absolute)."""
    return Path(home or os.environ.get("PREFECT_HOME") or Path.cwd() / ".prefect").resolve()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError, ValueError):
        return False


def _command_line(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        pass
    try:  # no /proc (macOS)
        found = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True,
                               text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return found.stdout.strip() or None


def _alive(pid: int) -> bool:
    """Whether ``pid`` is still our Prefect server (a reused pid is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    command = _command_line(pid)
    return command is not None and "prefect" in command and "server" in command


def _read_state(home: Path) -> ServerInfo | None:
    try:
        data = json.loads((home / STATE_FILE).read_text(encoding="utf-8"))
        return ServerInfo(int(data["pid"]), int(data["port"]), str(data["home"]),
                          str(data["started"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def status(home: str | os.PathLike[str] | None = None) -> ServerInfo | None:
    """The project's running server, or ``None`` (a stale pid file is removed)."""
    folder = prefect_home(home)
    info = _read_state(folder)
    if info is None:
        return None
    if _alive(info.pid) and healthy(info.api_url):
        return info
    if not _alive(info.pid):
        (folder / STATE_FILE).unlink(missing_ok=True)
    return None


def _prefect_command() -> list[str]:
    return [sys.executable, "-m", "prefect"]


def start(home: str | os.PathLike[str] | None = None, port: int | None = None,
          timeout: float = 120.0) -> tuple[ServerInfo, bool]:
    """Start the project server in the background, or reuse the running one.

    Returns the server and whether it was started now.
    """
    folder = prefect_home(home)
    running = status(folder)
    if running is not None:
        return running, False
    try:
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)  # the database holds run history: keep it private
        (folder / LOG_FILE).open("ab").close()
    except OSError as err:
        raise ServerError(
            f"the Prefect server's folder '{folder}' cannot be written ({err.strerror}) — "
            "run qualcode from the project folder, or set PREFECT_HOME to a folder you may "
            "write to") from None
    info = _read_state(folder)
    if info is not None and _alive(info.pid):
        raise ServerError(
            f"a Prefect server started for this project (pid {info.pid}) is not answering on "
            f"{info.url}; stop it with `qualcode server stop` and start it again")
    port = port or free_port()
    env = {**os.environ, **SERVER_ENV, "PREFECT_HOME": str(folder)}
    env.pop("PREFECT_API_URL", None)
    log_path = folder / LOG_FILE
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [*_prefect_command(), "server", "start", "--host", HOST, "--port", str(port)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
            cwd=folder, start_new_session=True,
        )
    info = ServerInfo(process.pid, port, str(folder),
                      time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    (folder / STATE_FILE).write_text(json.dumps(asdict(info), indent=2) + "\n",
                                     encoding="utf-8")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            (folder / STATE_FILE).unlink(missing_ok=True)
            raise ServerError(f"the Prefect server exited with status {process.returncode}; "
                              f"see {log_path}")
        if healthy(info.api_url):
            return info, True
        time.sleep(0.3)
    _terminate(process.pid)
    (folder / STATE_FILE).unlink(missing_ok=True)
    raise ServerError(f"the Prefect server did not answer within {timeout:.0f} s; see {log_path}")


def _terminate(pid: int, timeout: float = 20.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)  # the server and the workers it started
    except ProcessLookupError:
        return
    except PermissionError:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            finished, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # not our child: poll for its disappearance
            finished = 0 if _alive(pid) else pid
        if finished:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def stop(home: str | os.PathLike[str] | None = None) -> ServerInfo | None:
    """Stop the project server; return what was stopped (``None`` if nothing ran)."""
    folder = prefect_home(home)
    info = _read_state(folder)
    if info is None:
        return None
    if _alive(info.pid):
        _terminate(info.pid)
    (folder / STATE_FILE).unlink(missing_ok=True)
    return info
