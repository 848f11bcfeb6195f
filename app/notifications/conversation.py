"""Customer messages written by an LLM through the Dapr Conversation API."""

from __future__ import annotations

from dapr.clients import DaprClient
from dapr.clients.grpc import conversation

from app.core.unreachable import ModelCallFailed

SYSTEM_PROMPT = (
    "You write short, friendly, precise emails from a Dapr support team to a customer. "
    "Keep every technical step, command and article reference you are given; do not invent "
    "new ones. No greeting line placeholders, no signature placeholders."
)


def write_with_llm(client: DaprClient, component: str, draft: str, temperature: float = 0.2) -> str:
    """Asks the conversation component to rewrite an offline draft as a customer email.
    ModelCallFailed on any failure: the workflow then writes the message offline, it does not
    wait for the model (app/core/unreachable.py)."""
    try:
        response = client.converse_alpha2(
            name=component,
            inputs=[conversation.ConversationInputAlpha2(messages=[
                conversation.create_system_message(SYSTEM_PROMPT),
                conversation.create_user_message(
                    "Rewrite this message to the customer. Return only the email body.\n\n" + draft),
            ])],
            temperature=temperature,
        )
    except Exception as error:
        raise ModelCallFailed(f"conversation component {component!r}: {type(error).__name__}: {error}"[:1000]) from error
    for output in response.outputs or []:
        for choice in output.choices or []:
            if choice.message and choice.message.content and choice.message.content.strip():
                return choice.message.content.strip()
    raise ModelCallFailed(f"conversation component {component!r} returned no text")
