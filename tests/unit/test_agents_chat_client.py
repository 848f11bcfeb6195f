"""The agents' chat client comes from settings and never retries on its own: one failed call is
one failed activity, which the workflow's retry policy handles."""

from __future__ import annotations

import httpx
import pytest
from dapr_agents import DaprChatClient

from app.agents.chat_client import build_chat_client
from app.core.config import Settings
from tests.support.scripted_llm import ScriptedLLM

SCRIPTED_PORT = 25991


def test_openai_mode_reaches_the_configured_server_with_the_configured_model():
    client = build_chat_client(Settings(llm_provider="openai", openai_api_key="k", llm_model="m-1",
                                        openai_base_url="http://127.0.0.1:9/v1", llm_timeout=7))
    assert client.model == "m-1"
    assert str(client.client.base_url) == "http://127.0.0.1:9/v1/"
    assert client.client.timeout == httpx.Timeout(7)
    assert client.client.max_retries == 0


def test_conversation_mode_uses_the_conversation_component():
    client = build_chat_client(Settings(llm_provider="conversation"))
    assert isinstance(client, DaprChatClient)
    assert client.component_name == "customer-notification-llm"


def test_offline_mode_has_no_chat_client():
    with pytest.raises(ValueError):
        build_chat_client(Settings(llm_provider="offline"))


def test_a_failed_call_is_made_once():
    llm = ScriptedLLM(port=SCRIPTED_PORT).start()
    try:
        client = build_chat_client(Settings(llm_provider="openai", openai_api_key="k",
                                            openai_base_url=llm.base_url))
        llm.fail_next(5)
        with pytest.raises(ValueError, match="InternalServerError"):
            client.generate(messages=[{"role": "user", "content": "hi"}])
        assert len(llm.requests) == 1
    finally:
        llm.stop()
