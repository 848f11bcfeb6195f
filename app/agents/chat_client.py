"""The dapr-agents chat client both agents and the structuring activities use, from settings:
OpenAI or any OpenAI-compatible server (`openai`), or the Dapr Conversation API component
(`conversation`). LLM mode only: importing it imports dapr_agents.

Neither client retries on its own: a failed call fails its activity, and the workflow's retry
policy decides (and then falls back to the offline path).
"""

from __future__ import annotations

from functools import lru_cache

from dapr_agents import DaprChatClient, OpenAIChatClient
from dapr_agents.llm.chat import ChatClientBase

from app.core.config import Settings, get_settings


class NoRetryOpenAIChatClient(OpenAIChatClient):
    def get_client(self):
        # The openai SDK retries twice by default; retries belong to the workflow.
        return super().get_client().with_options(max_retries=0)


def build_chat_client(settings: Settings) -> ChatClientBase:
    provider = settings.effective_llm_provider
    if provider == "openai":
        return NoRetryOpenAIChatClient(model=settings.llm_model, api_key=settings.openai_api_key or None,
                                       base_url=settings.openai_base_url or None,
                                       timeout=settings.llm_timeout)
    if provider == "conversation":
        # The Dapr SDK client it builds per call does not retry either (DAPR_API_MAX_RETRIES unset).
        return DaprChatClient(component_name=settings.conversation_component)
    raise ValueError(f"no chat client for LLM mode {provider!r}")


@lru_cache
def chat_client() -> ChatClientBase:
    return build_chat_client(get_settings())
