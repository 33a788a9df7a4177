"""A project-local Prefect server: start it in the background, reuse it, stop it.

Schedules only fire against a running Prefect server, and runs recorded by a running
server are faster (no temporary server per run) and keep their full history. This module
runs ``prefect server start`` on a free loopback port with the project's ``PREFECT_HOME``
(``./.prefect`` by default), in its own session so that it outlives the command that
started it, and keeps its pid, port and log under ``PREFECT_HOME``:

- ``server.json``: pid, port, URLs, start time;
- ``server.log``: the server's output;
- ``server.lock``: held while a server starts, so that two commands starting one at the
  same time start one server, not two on the same database.

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
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

HOST = "127.0.0.1"
STATE_FILE = "server.json"
LOG_FILE = "server.log"
LOCK_FILE = "server.lock"
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


def status(home: str | os.PathLike[str] | None = None, wait: float = 0.0
           ) -> ServerInfo | None:
    """The project's running server, or ``None`` (a stale pid file is removed). A server
    process that is alive but does not answer is given ``wait`` more seconds (a busy
    server answers late)."""
    folder = prefect_home(home)
    info = _read_state(folder)
    if info is None:
        return None
    deadline = time.monotonic() + wait
    while _alive(info.pid):
        if healthy(info.api_url):
            return info
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.5)
    (folder / STATE_FILE).unlink(missing_ok=True)
    return None


def not_answering(home: str | os.PathLike[str] | None = None) -> ServerInfo | None:
    """The project's server when its process is alive but it does not answer (hung, or
    too busy), else ``None``."""
    info = _read_state(prefect_home(home))
    if info is None or not _alive(info.pid) or healthy(info.api_url):
        return None
    return info


def still_running(info: ServerInfo) -> bool:
    """Whether the server ``info`` describes is still the project's server: its process
    lives and the state file still names it (not stopped, not replaced by another)."""
    return _read_state(Path(info.home)) == info and _alive(info.pid)


def port_problem(port: int) -> str | None:
    """Why the server cannot listen on ``port`` of 127.0.0.1 (another program uses it)."""
    if not 1 <= port <= 65535:
        return f"port {port} is not a port number (1-65535)"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # as uvicorn does: a port left in TIME_WAIT by a stopped server is free
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as err:
            return (f"port {port} on {HOST} cannot be used ({err.strerror or err}): another "
                    "program listens there — leave out --port (qualcode then picks a free "
                    "one) or choose another")
    return None


@contextlib.contextmanager
def _starting(folder: Path) -> Iterator[None]:
    """Held while a server starts: a second ``start`` waits, then reuses that server."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock
        yield
        return
    with (folder / LOCK_FILE).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _last_line(path: Path, offset: int) -> str:
    """The last non-blank line written to ``path`` after ``offset`` (what the server said
    before it exited)."""
    try:
        with path.open("rb") as log:
            log.seek(offset)
            lines = log.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    # Prefect ends with "An exception occurred." after the message itself, and wraps a
    # long message over lines: take the unindented lines that end the log.
    lines = [line.rstrip() for line in lines if line.strip() != "An exception occurred."]
    while lines and not lines[-1]:
        lines.pop()
    said: list[str] = []
    while lines and lines[-1] and not lines[-1][:1].isspace() and len(said) < 3:
        said.insert(0, lines.pop())
    return " ".join(said)


def _prefect_command() -> list[str]:
    return [sys.executable, "-m", "prefect"]


def start(home: str | os.PathLike[str] | None = None, port: int | None = None,
          timeout: float = 120.0) -> tuple[ServerInfo, bool]:
    """Start the project server in the background, or reuse the running one.

    Returns the server and whether it was started now. ``port`` is only for a new server.
    """
    folder = prefect_home(home)
    running = status(folder)
    if running is not None:
        return running, False
    try:
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)  # the database holds run history: keep it private
        (folder / LOG_FILE).open("ab").close()
        (folder / LOCK_FILE).open("a").close()
    except OSError as err:
        raise ServerError(
            f"the Prefect server's folder '{folder}' cannot be written ({err.strerror}) — "
            "run qualcode from the project folder, or set PREFECT_HOME to a folder you may "
            "write to") from None
    with _starting(folder):
        running = status(folder)  # started by another command while this one waited
        if running is not None:
            return running, False
        return _start(folder, port, timeout), True


def _start(folder: Path, port: int | None, timeout: float) -> ServerInfo:
    info = _read_state(folder)
    if info is not None and _alive(info.pid):
        raise ServerError(
            f"a Prefect server started for this project (pid {info.pid}) is not answering on "
            f"{info.url}; stop it with `qualcode server stop` and start it again")
    if port and (problem := port_problem(port)):
        raise ServerError(problem)
    port = port or free_port()
    env = {**os.environ, **SERVER_ENV, "PREFECT_HOME": str(folder)}
    env.pop("PREFECT_API_URL", None)
    log_path = folder / LOG_FILE
    offset = log_path.stat().st_size
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
            said = _last_line(log_path, offset)
            raise ServerError(f"the Prefect server exited with status {process.returncode}"
                              + (f" ({said})" if said else "") + f"; see {log_path}")
        if healthy(info.api_url):
            return info
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
    """Stop the project server; return what was stopped (``None`` if nothing ran, such as
    a server whose process is gone: its stale state file is removed)."""
    folder = prefect_home(home)
    info = _read_state(folder)
    if info is None:
        return None
    running = _alive(info.pid)
    if running:
        _terminate(info.pid)
    (folder / STATE_FILE).unlink(missing_ok=True)
    return info if running else None
