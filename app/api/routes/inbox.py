"""The app's own subscriptions (the support team's inbox): Dapr asks /dapr/subscribe, then
delivers each topic's CloudEvents to /events/{topic}. Only daprd may call these: each call must
carry APP_API_TOKEN (app/api/sidecar_auth.py), so nobody can forge a delivery."""

from __future__ import annotations

from fastapi import APIRouter, Body, Depends

from app.api.deps import RecordsDep, SettingsDep
from app.api.sidecar_auth import require_sidecar
from app.core.logging import ticket_logger
from app.services.inbox import record_receipt

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_sidecar)])


def _topics(settings) -> list[str]:
    return [settings.topic_solution_ready, settings.topic_escalations, settings.topic_notifications]


@router.get("/dapr/subscribe")
def subscriptions(settings: SettingsDep) -> list[dict]:
    return [{"pubsubname": settings.pubsub_name, "topic": topic, "route": f"/events/{topic}"}
            for topic in _topics(settings)]


@router.post("/events/{topic}")
def receive(topic: str, settings: SettingsDep, records: RecordsDep, event: dict = Body(...)) -> dict:
    if topic not in _topics(settings):
        return {"status": "DROP"}  # not ours: tell Dapr not to redeliver
    data = event.get("data")
    ticket_id = data.get("ticket_id") if isinstance(data, dict) else None
    if not ticket_id:
        return {"status": "DROP"}
    record_receipt(records, topic, ticket_id, str(event.get("id")), data)
    ticket_logger(__name__, ticket_id).info("message received", extra={"topic": topic, "message_id": event.get("id")})
    return {"status": "SUCCESS"}
