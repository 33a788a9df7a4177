"""Serving the main flow on a schedule from one process (``qualcode schedule``).

The team route, a work pool with a worker and ``prefect deploy --all``, reads the
deployments from ``prefect.yaml`` at the project root instead.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import ObjectNotFound
from prefect.schedules import Cron
from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings
from prefect.types.entrypoint import EntrypointType

FLOW_NAME = "code-corpus"  # the name of flows.code_corpus.code_corpus


def cron_schedule(cron: str, timezone: str) -> Cron:
    """The schedule; raises ``ValueError`` for an invalid cron string or time zone."""
    return Cron(cron, timezone=timezone)


def _recently(deployment: Any) -> float | None:
    """Seconds since a process last asked for ``deployment``'s runs, when that is recent
    enough for the process to be serving it still (within three polls, at least 30 s)."""
    if deployment.last_polled is None:
        return None
    age = (datetime.now(UTC) - deployment.last_polled).total_seconds()
    return age if age < max(30.0, 3 * get_current_settings().runner.poll_frequency) else None


def served_elsewhere(name: str, api_url: str) -> float | None:
    """Seconds since another process last asked for the runs of ``code-corpus/<name>``
    when one still serves it (the deployment is not paused and was polled in the last
    30 s), else ``None``. Serving it a second time would replace its schedule and
    parameters under the first process, and the first to stop would pause both."""
    with temporary_settings(updates={PREFECT_API_URL: api_url}), \
            get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(f"{FLOW_NAME}/{name}")
        except ObjectNotFound:
            return None
        return None if deployment.paused else _recently(deployment)


def serve_code_corpus(name: str, schedule: Cron, parameters: dict[str, Any],
                      api_url: str) -> None:
    """Create (or update) the deployment ``code-corpus/<name>`` on the server at ``api_url``
    and run its scheduled runs until interrupted; the schedule is paused on shutdown."""
    # Prefect read its settings when it was imported, which may be before the project
    # server was started: without the address given here it would serve on a temporary
    # server of its own, where schedules never fire.
    from . import stop_workers_before_exit
    from .code_corpus import code_corpus  # a few seconds: not for `server status`

    stop_workers_before_exit()  # in the flow-run processes this one starts
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
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


def _when(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M") if moment else "-"


def overview(api_url: str, runs: int = 5) -> list[str]:
    """Lines for ``qualcode server status``: each deployment, its schedules and whether a
    process serves it, then the latest flow runs with their states (and, for a run that
    did not complete, why)."""
    lines: list[str] = []
    with temporary_settings(updates={PREFECT_API_URL: api_url}), \
            get_client(sync_client=True) as client:
        flows = {flow.id: flow.name for flow in client.read_flows()}
        deployments = client.read_deployments()
        names = {d.id: f"{flows.get(d.flow_id, '?')}/{d.name}" for d in deployments}
        for deployment in deployments:
            schedules = ", ".join(
                f"cron '{s.schedule.cron}' ({s.schedule.timezone or 'UTC'})"
                if getattr(s.schedule, "cron", None) else str(s.schedule)
                for s in deployment.schedules) or "no schedule"
            age = _recently(deployment)
            served = (f"served (asked for runs {age:.0f} s ago)" if age is not None else
                      "NOT served: no process runs it (start `qualcode schedule` again)"
                      if deployment.schedules else "run on demand")
            lines.append(f"  deployment {names[deployment.id]}: {schedules}; "
                         + ("paused" if deployment.paused else served))
        finished = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(
            not_any_=[StateType.SCHEDULED, StateType.PENDING])))
        for run in client.read_flow_runs(flow_run_filter=finished,
                                         sort=FlowRunSort.START_TIME_DESC, limit=runs):
            source = names.get(run.deployment_id, "") if run.deployment_id else ""
            state = run.state.name if run.state else "?"
            why = ""
            if run.state and run.state.type in (StateType.FAILED, StateType.CRASHED,
                                                 StateType.CANCELLED) and run.state.message:
                why = f": {' '.join(run.state.message.split())[:200]}"
            lines.append(f"  run {_when(run.start_time)} {flows.get(run.flow_id, '?')} "
                         f"'{run.name}'" + (f" (deployment {source})" if source else "")
                         + f" {state}{why}")
    if not lines:
        lines.append("  no deployments and no runs yet")
    return lines
