"""Prefect settings qualcode applies around the flow runs it starts itself."""

from __future__ import annotations

from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    get_current_settings,
    temporary_settings,
)

from flows import in_process_run


def test_heartbeats_are_off_only_on_the_temporary_server() -> None:
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        default = get_current_settings().flows.heartbeat_frequency
        with in_process_run():
            assert get_current_settings().flows.heartbeat_frequency is None
        assert get_current_settings().flows.heartbeat_frequency == default
    real_server = {PREFECT_API_URL: "http://127.0.0.1:4200/api",
                   PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 90}
    with temporary_settings(updates=real_server), in_process_run():
        # a real server can tell crashed runs by their heartbeats: they stay on
        assert get_current_settings().flows.heartbeat_frequency == 90
    assert default is not None
