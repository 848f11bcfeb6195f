"""What a step reads back of the records other steps stored, when the workflow (v3) passes a
reference instead of the text: the approved proposal of a revision, a notification of a kind.

A record that is missing is an error, never a default: the step that stores it ran before the
workflow could name it, so its absence means the records store lost it, and the step fails
(retried, then escalated) rather than send an empty message.
"""

from __future__ import annotations

from app.delivery.models import NotificationToDeliver
from app.domain.stored import analysis_key, notification_key
from app.store import StateStore
from app.workflows.contracts import Proposal


class StoredRecordMissing(LookupError):
    pass


def approved_proposal_text(records: StateStore, ticket_id: str, revision: int) -> str:
    """The proposal of `revision` as the customer reads it when the engineer approved it unedited."""
    stored = records.get_value(analysis_key(ticket_id, revision))
    if not stored or "proposal" not in stored:
        raise StoredRecordMissing(f"no stored proposal for ticket {ticket_id} revision {revision}")
    return Proposal.model_validate(stored["proposal"]).as_text()


def stored_notification(records: StateStore, ticket_id: str, kind: str) -> NotificationToDeliver:
    stored = records.get_value(notification_key(ticket_id, kind))
    if not stored:
        raise StoredRecordMissing(f"no stored {kind} notification for ticket {ticket_id}")
    return NotificationToDeliver.model_validate(stored)
