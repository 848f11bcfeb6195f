"""Admission control on filing (app/services/admission.py) with a scripted read model and clock."""

from __future__ import annotations

import grpc
import pytest

from app.api.errors import component_unreachable
from app.services.admission import AdmissionGate, Overloaded
from tests.unit.grpc_errors import RpcFailure


class Stages:
    """The read model seam: the stage the workflow recorded for each ticket."""

    def __init__(self):
        self.recorded: dict[str, str] = {}
        self.asked = 0

    def positions(self, ticket_ids):
        self.asked += 1
        return {t: self._position(self.recorded[t]) for t in ticket_ids if t in self.recorded}

    @staticmethod
    def _position(recorded):
        """A stage alone is at revision 0."""
        return recorded if isinstance(recorded, tuple) else (recorded, 0)


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def gate(limit=2, **kwargs):
    stages, clock = Stages(), Clock()
    return AdmissionGate(limit, stages, clock=clock, **kwargs), stages, clock


def test_beyond_the_bound_a_filing_is_shed_with_a_retry_after():
    admission, stages, _ = gate()
    admission.admit("T-1")
    admission.admit("T-2")
    with pytest.raises(Overloaded) as shed:
        admission.admit("T-3")
    assert shed.value.status_code == 503 and shed.value.retry_after >= 1
    assert "limit 2" in shed.value.message and admission.shed == 1 and admission.active == 2


def test_a_ticket_waiting_for_a_decision_or_finished_frees_its_place():
    admission, stages, clock = gate()
    admission.admit("T-1")
    admission.admit("T-2")
    stages.recorded.update({"T-1": "awaiting_approval", "T-2": "expert_analysis"})
    admission.admit("T-3")  # T-1 settled
    assert admission.active == 2
    stages.recorded["T-2"] = "not_entitled"
    clock.now += 1
    admission.admit("T-4")
    assert admission.active == 2


def test_the_read_model_is_asked_at_most_once_per_interval_and_only_at_the_bound():
    admission, stages, clock = gate(refresh_interval=0.25)
    admission.admit("T-1")
    admission.admit("T-2")
    assert stages.asked == 0
    for ticket in ("T-3", "T-4", "T-5"):
        with pytest.raises(Overloaded):
            admission.admit(ticket)
    assert stages.asked == 1
    clock.now += 0.3
    with pytest.raises(Overloaded):
        admission.admit("T-6")
    assert stages.asked == 2


def test_a_ticket_that_never_settles_stops_counting_after_max_age():
    admission, _, clock = gate(limit=1, max_age=60)
    admission.admit("T-1")
    clock.now += 61
    admission.admit("T-2")
    assert admission.active == 1


def test_a_released_or_repeated_ticket_takes_no_second_place_and_zero_means_no_bound():
    admission, _, _ = gate(limit=1)
    admission.admit("T-1")
    admission.admit("T-1")  # the same ticket filed again
    admission.release("T-1")
    admission.admit("T-2")
    assert admission.active == 1
    unbounded, _, _ = gate(limit=0)
    for i in range(100):
        unbounded.admit(f"T-{i}")
    assert unbounded.shed == 0


def test_retry_after_follows_how_fast_tickets_settle():
    admission, stages, clock = gate(limit=2)
    admission.admit("T-1")
    admission.admit("T-2")
    with pytest.raises(Overloaded) as first:
        admission.admit("T-3")  # first look: no settle rate yet
    assert first.value.retry_after == 2
    clock.now += 10
    stages.recorded["T-1"] = "completed"  # one ticket settled in 10 s
    admission.admit("T-3")
    clock.now += 1
    with pytest.raises(Overloaded) as slow:
        admission.admit("T-4")  # one place freed in the last 10 s
    assert slow.value.retry_after == 10
    clock.now += 0.5
    stages.recorded.update({"T-2": "awaiting_approval", "T-3": "completed"})
    admission.admit("T-4")
    admission.admit("T-5")
    clock.now += 0.3
    with pytest.raises(Overloaded) as faster:
        admission.admit("T-6")  # three places freed in the last 10 s
    assert faster.value.retry_after == 4
    clock.now += 20
    with pytest.raises(Overloaded) as stalled:
        admission.admit("T-7")
    assert stalled.value.retry_after == 2


def test_a_decided_ticket_counts_until_finished_or_waiting_on_a_later_revision():
    admission, stages, clock = gate(limit=2, working_on="notification after a decision")
    stages.recorded.update({"T-1": ("awaiting_approval", 0), "T-2": ("awaiting_approval", 1)})
    admission.admit("T-1", decided_revision=0)
    admission.admit("T-2", decided_revision=1)
    # Still recorded waiting on the decided revision (the read model not yet past the decision):
    # not settled.
    with pytest.raises(Overloaded) as shed:
        admission.admit("T-3", decided_revision=0)
    assert "2 tickets in notification after a decision, limit 2" in shed.value.message
    stages.recorded["T-1"] = ("notifying", 0)
    clock.now += 1
    with pytest.raises(Overloaded):
        admission.admit("T-3", decided_revision=0)
    # A rejection's new proposal waits on a later revision; an approval finishes.
    stages.recorded.update({"T-1": ("awaiting_approval", 1), "T-2": ("completed", 1)})
    clock.now += 1
    admission.admit("T-3", decided_revision=0)
    admission.admit("T-4", decided_revision=2)
    assert admission.active == 2 and admission.shed == 2


@pytest.mark.parametrize(("code", "details", "unreachable"), [
    (grpc.StatusCode.UNKNOWN, "failed getting state: dial tcp 127.0.0.1:5432: connect: connection refused", True),
    (grpc.StatusCode.INTERNAL, "error saving state: FATAL: the database system is starting up", True),
    (grpc.StatusCode.UNKNOWN, "failed to load workflow metadata: FATAL: terminating connection due to "
                              "unexpected postmaster exit (SQLSTATE 57P01)", True),
    (grpc.StatusCode.UNKNOWN, "state store analysis-state is not found", False),
    (grpc.StatusCode.INVALID_ARGUMENT, "connection refused", False),
])
def test_a_component_that_cannot_be_reached_is_told_apart_from_a_fault(code, details, unreachable):
    assert component_unreachable(RpcFailure(code, details)) is unreachable
