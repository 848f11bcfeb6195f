"""The sidecar watchdog (app/core/sidecar_watchdog.py) on a scripted clock: when it restarts the
sidecar, and when it must not."""

from __future__ import annotations

import httpx
import pytest

from app.core.sidecar_watchdog import RestartClaim, SidecarWatchdog, control_plane_problem

HEALTHY = {"actorRuntime": {"runtimeStatus": "RUNNING", "hostReady": True, "placement": "placement: connected"},
           "scheduler": {"connected_addresses": ["127.0.0.1:50006"]},
           "workflows": {"connectedWorkers": 1}}


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def rig():
    clock, restarts, problem = Clock(), [], {"now": None}
    watchdog = SidecarWatchdog(after_s=60, min_timeouts=3, cooldown_s=300, problem=lambda: problem["now"],
                               restart=lambda: restarts.append(clock.now), clock=clock, claim=lambda _: True)
    return watchdog, clock, restarts, problem


def _time_out(watchdog, clock, instance_id: str, times: int, every_s: float) -> None:
    for _ in range(times):
        watchdog.timed_out(instance_id)
        clock.now += every_s


def test_one_instance_past_its_deadline_for_a_minute_restarts_the_sidecar_once(rig):
    watchdog, clock, restarts, _ = rig
    _time_out(watchdog, clock, "T-1", 3, 25)  # at 0, 25, 50 s: not yet a minute
    assert restarts == []
    watchdog.timed_out("T-1")  # at 75 s
    assert restarts == [1075.0] and watchdog.restarts == 1
    # Its count starts again after the restart: the next timeout alone restarts nothing.
    watchdog.timed_out("T-1")
    assert restarts == [1075.0]


def test_an_answer_for_the_instance_in_between_means_it_is_not_wedged(rig):
    watchdog, clock, restarts, _ = rig
    _time_out(watchdog, clock, "T-1", 3, 25)
    watchdog.answered("T-1")  # slow, not wedged: the runtime answered
    _time_out(watchdog, clock, "T-1", 2, 25)
    assert restarts == []


def test_timeouts_spread_over_different_instances_restart_nothing(rig):
    watchdog, clock, restarts, _ = rig
    for n in range(10):  # a loaded sidecar: each instance timed out once
        watchdog.timed_out(f"T-{n}")
        clock.now += 20
    assert restarts == []


def test_a_control_plane_the_sidecar_reports_down_is_waited_for_not_restarted_over(rig):
    watchdog, clock, restarts, problem = rig
    problem["now"] = "placement: placement: disconnected"
    _time_out(watchdog, clock, "T-1", 5, 20)
    assert restarts == []
    # Placement back and the instance still hangs: now it is a wedge.
    problem["now"] = None
    watchdog.timed_out("T-1")
    assert len(restarts) == 1


def test_at_most_one_restart_per_cooldown(rig):
    watchdog, clock, restarts, _ = rig
    _time_out(watchdog, clock, "T-1", 4, 25)
    assert len(restarts) == 1
    _time_out(watchdog, clock, "T-2", 4, 25)  # another wedge 100 s later: within the cooldown
    assert len(restarts) == 1
    clock.now += 300
    watchdog.timed_out("T-2")
    assert len(restarts) == 2


def test_a_restart_the_sidecar_refuses_is_logged_and_tried_after_the_cooldown(rig, caplog):
    watchdog, clock, _, _ = rig
    calls = []

    def refuse():
        calls.append(clock.now)
        raise httpx.ConnectError("refused")

    watchdog._restart = refuse
    _time_out(watchdog, clock, "T-1", 4, 25)
    assert len(calls) == 1 and watchdog.restarts == 0
    assert "asking the sidecar to shut down failed" in caplog.text
    _time_out(watchdog, clock, "T-1", 2, 25)
    assert len(calls) == 1
    clock.now += 300
    watchdog.timed_out("T-1")
    assert len(calls) == 2


@pytest.mark.parametrize("change, problem", [
    ({}, None),
    ({"actorRuntime": {**HEALTHY["actorRuntime"], "placement": "placement: disconnected"}}, "placement"),
    ({"actorRuntime": {**HEALTHY["actorRuntime"], "hostReady": False}}, "host ready"),
    ({"scheduler": {}}, "scheduler"),
    ({"workflows": {"connectedWorkers": 0}}, "worker"),
])
def test_the_sidecars_own_metadata_says_whether_its_control_plane_explains_a_hang(change, problem):
    found = control_plane_problem({**HEALTHY, **change})
    assert found is None if problem is None else problem in found


def test_a_turn_held_restarts_at_once_within_the_same_cooldown(rig):
    watchdog, clock, restarts, problem = rig
    problem["now"] = "placement: disconnected"
    assert watchdog.turn_held("T-1", 61) is False and restarts == []
    problem["now"] = None
    assert watchdog.turn_held("T-1", 62) is True and restarts == [1000.0]
    clock.now += 100
    assert watchdog.turn_held("T-2", 61) is False  # the cooldown holds for both ways of seeing a wedge
    _time_out(watchdog, clock, "T-3", 4, 25)
    assert restarts == [1000.0]


def test_the_api_and_the_worker_restart_their_shared_sidecar_once_per_cooldown(tmp_path):
    claim = RestartClaim(tmp_path / "claim")
    restarts = []
    worker = SidecarWatchdog(problem=lambda: None, restart=lambda: restarts.append("worker"), claim=claim)
    api = SidecarWatchdog(problem=lambda: None, restart=lambda: restarts.append("api"), claim=claim)
    assert worker.turn_held("T-1", 70) is True
    assert api.turn_held("T-1", 70) is False  # the other process asked for it a moment ago
    assert restarts == ["worker"]
    assert RestartClaim(tmp_path / "claim")(cooldown_s=0) is True
