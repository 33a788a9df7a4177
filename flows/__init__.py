"""Prefect flows: thin wiring over the ``qualcode`` library.

Importing this package sets qualcode's Prefect defaults before Prefect itself is
imported: analytics off, logs kept out of Prefect's database, and a project-local
``PREFECT_HOME`` (``./.prefect``). A value the user has set is never overridden.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PRIVACY_DEFAULTS = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    # Logged messages could quote a file name or problem; keep them on this machine.
    "PREFECT_LOGGING_TO_API_ENABLED": "false",
    # The first start of the temporary server creates its database; on two busy cores
    # that can take longer than Prefect's 20 s default.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
}


def configure_prefect_environment() -> None:
    """Set qualcode's Prefect defaults; call before ``import prefect``."""
    for key, value in PRIVACY_DEFAULTS.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("PREFECT_HOME", str((Path.cwd() / ".prefect").resolve()))
    if not os.environ.get("PREFECT_API_URL"):
        # Without a server Prefect starts a temporary one and stops it when the run ends,
        # before its event recorder has flushed; that prints pages of harmless
        # CancelledError tracebacks. Only the temporary server's own log is muted; flow
        # and task logs still show. `qualcode server start` keeps full run history.
        os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")


def stop_workers_before_exit() -> None:
    """Stop qualcode's worker processes before ``multiprocessing`` waits for them.

    ``qualcode schedule`` (Prefect's runner) runs each flow run in a process started by
    ``multiprocessing``, which, when that process ends, waits for its child processes
    before the ``atexit`` handler that stops the worker pool: the pool's workers would
    wait for work forever, and so would the flow run's process (holding their memory)
    and, on Ctrl-C, the command itself. A multiprocessing finalizer runs before that wait
    and waits for the workers itself, while the pool's queue can still tell them to stop
    (its own finalizer closes it next). A process that ``multiprocessing`` starts forgets
    the finalizers registered before it ran its target (this module may be imported while
    it unpickles it): it registers it again then.
    """
    import multiprocessing
    from multiprocessing import util

    from qualcode import parallel

    def stop(timeout: float = 10.0) -> None:
        parallel.shutdown()
        deadline = time.monotonic() + timeout
        for child in multiprocessing.active_children():
            child.join(max(0.0, deadline - time.monotonic()))
            if child.is_alive():
                child.terminate()

    def register(_: object = None) -> None:
        util.Finalize(None, stop, exitpriority=100)

    register()
    util.register_after_fork(_AFTER_START, register)


def _started_by_multiprocessing() -> bool:
    import multiprocessing

    return multiprocessing.parent_process() is not None


class _Marker:
    """What ``multiprocessing.util.register_after_fork`` keys its callback on."""


_AFTER_START = _Marker()


@contextmanager
def in_process_run() -> Iterator[None]:
    """Around flow runs that this process starts itself (the CLI, the benchmarks).

    On Prefect's temporary server, which stops when this process ends, flow-run
    heartbeats are turned off: nothing can read them after the run, and every run would
    wait up to a second at its end for the heartbeat thread (it sleeps in one-second
    steps; an empty flow takes 1.1 s with it, 0.2 s without). On a real server they stay,
    so that it can tell crashed runs.
    """
    from prefect.settings import (
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        get_current_settings,
        temporary_settings,
    )

    if get_current_settings().api.url:
        yield
        return
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


configure_prefect_environment()
if _started_by_multiprocessing():  # a flow run of `qualcode schedule` (a spawned process)
    stop_workers_before_exit()
