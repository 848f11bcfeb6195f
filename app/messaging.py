"""Publishing on support-pubsub with deterministic CloudEvent ids.

Activities run at least once. Each message's CloudEvent id is derived from the ticket and the
step (`{ticket_id}:{kind}`), so a retried publish is recognisable as the same message and
subscribers drop the repeat.
"""

from __future__ import annotations

import json
from typing import Any

from dapr.clients import DaprClient

from app.store import StateStore


def publish(client: DaprClient, pubsub: str, topic: str, message_id: str, data: dict[str, Any]) -> None:
    client.publish_event(
        pubsub_name=pubsub,
        topic_name=topic,
        data=json.dumps(data),
        data_content_type="application/json",
        publish_metadata={"cloudevent.id": message_id, "cloudevent.source": "support-service"},
    )


def publish_once(client: DaprClient, outbox: StateStore, pubsub: str, topic: str,
                 message_id: str, data: dict[str, Any], first_attempt: bool = False) -> bool:
    """Publishes unless this message id was already published; True when it published now.

    The marker is written after the publish: a crash between the two republishes the same
    CloudEvent id, which subscribers recognise. Nothing is lost either way. `first_attempt`
    (the caller has just created what the message announces, so no earlier attempt can have
    published it) skips reading the marker.
    """
    marker = f"published:{message_id}"
    if not first_attempt and outbox.get_value(marker) is not None:
        return False
    publish(client, pubsub, topic, message_id, data)
    outbox.save(marker, {"topic": topic, "message_id": message_id})
    return True
