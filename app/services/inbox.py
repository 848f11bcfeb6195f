"""The support team's inbox: what the app received on its own topics.

Each ticket and topic has one record listing the messages received. Delivery is at least once:
a message seen again (same CloudEvent id) is counted as a redelivery, not as a new message.
"""

from __future__ import annotations

from datetime import datetime, timezone

from app.store import StateStore


def inbox_key(topic: str, ticket_id: str) -> str:
    return f"inbox:{topic}:{ticket_id}"


def record_receipt(store: StateStore, topic: str, ticket_id: str, message_id: str, data: dict) -> dict:
    def add(record: dict | None) -> dict:
        record = record or {"ticket_id": ticket_id, "topic": topic, "messages": [], "redeliveries": 0}
        if any(m["id"] == message_id for m in record["messages"]):
            record["redeliveries"] += 1
        else:
            record["messages"].append({"id": message_id, "data": data,
                                       "received_at": datetime.now(timezone.utc).isoformat()})
        return record

    # Usually the first message of its topic for the ticket: inserted without a read first.
    return store.update(inbox_key(topic, ticket_id), add, likely_absent=True)
