"""The keys of the records a ticket's steps store in the records state store, one writer each:
the propose step's analysis of a revision and the notify step's notification of a kind.

Shared by the steps that write them, the steps that read them back (v3 passes references to
them instead of their text, app/workflows/ticket_workflow.py) and the views that show them.
"""

from __future__ import annotations

# Records written once (insert-if-absent) and never changed or deleted afterwards: the propose
# step's analysis, the notify step's notification and the first decision of a revision. A copy
# read once stays true, so the app keeps one (app/store.py, WriteOnceCache).
WRITE_ONCE_PREFIXES = ("analysis:", "notification:", "decision:")


def analysis_key(ticket_id: str, revision: int) -> str:
    """The propose step's record of a revision (app/activities/solution.py)."""
    return f"analysis:{ticket_id}:{revision}"


def notification_key(ticket_id: str, kind: str) -> str:
    """The notify step's record of a kind of message (app/activities/notification.py)."""
    return f"notification:{ticket_id}:{kind}"


def notification_id(ticket_id: str, kind: str) -> str:
    """The id a notification is published and delivered under."""
    return f"{ticket_id}:notification:{kind}"
