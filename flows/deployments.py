"""Serving the main flow on a schedule from one process (``qualcode schedule``).

The team route, a work pool with a worker and ``prefect deploy --all``, reads the
deployments from ``prefect.yaml`` at the project root instead.
"""

from __future__ import annotations

from typing import Any

from prefect.schedules import Cron
from prefect.types.entrypoint import EntrypointType

from .code_corpus import code_corpus


def cron_schedule(cron: str, timezone: str) -> Cron:
    """The schedule; raises ``ValueError`` for an invalid cron string or time zone."""
    return Cron(cron, timezone=timezone)


def serve_code_corpus(name: str, schedule: Cron, parameters: dict[str, Any]) -> None:
    """Create (or update) the deployment ``code-corpus/<name>`` and run its scheduled runs
    until interrupted; the schedule is paused on shutdown."""
    code_corpus.serve(
        name=name,
        schedules=[schedule],
        parameters=parameters,
        description="qualcode: code the corpus and refresh the reports",
        tags=["qualcode"],
        global_limit=1,  # a slow run is never overlapped by the next one
        # Loaded by module name, so runs do not depend on the serving process's folder.
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
