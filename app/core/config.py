"""Service settings, read from the environment (and `.env`); `env.template` lists every one."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: str | int | float) -> float:
    """'24h', '90s', '15m', '1.5d' or a bare number of seconds -> seconds."""
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 15m, 24h)")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    app_id: str = "support-service"
    # Component names, fixed by the product (resources/).
    customer_store: str = "customer-state"
    system_store: str = "system-state"
    analysis_store: str = "analysis-state"
    workflow_store: str = "workflow-state"
    agent_state_store: str = "agent-state"
    pubsub_name: str = "support-pubsub"
    conversation_component: str = "customer-notification-llm"

    topic_solution_ready: str = "solution-ready"
    topic_escalations: str = "ticket-escalations"
    topic_notifications: str = "customer-notifications"

    # How long a proposal waits for an engineer's decision before the ticket escalates.
    approval_timeout: float = 24 * 3600
    max_revisions: int = 2
    # Replaces every first-response target (e.g. "5s") for drills and tests; unset in production.
    sla_override: float | None = None

    # LLM: "offline" needs nothing; "openai" reaches OpenAI or any OpenAI-compatible URL
    # (agents) and the Conversation API component (notifications). Unset = decided by whether
    # a key or base URL is configured.
    llm_provider: Literal["auto", "offline", "openai", "conversation"] = "auto"
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_timeout: float = 60.0

    # name:role:token entries, comma-separated; roles: client, engineer, operator.
    api_tokens: str | None = None
    # Without API_TOKENS the service refuses to start, unless this says it is a development
    # machine; then the development tokens documented in env.template apply.
    dev_mode: bool = False

    log_level: str = "INFO"

    @field_validator("approval_timeout", "sla_override", mode="before")
    @classmethod
    def _duration(cls, value):  # noqa: N805 - pydantic validator
        return None if value in (None, "") else parse_duration(value)

    @property
    def effective_llm_provider(self) -> Literal["offline", "openai", "conversation"]:
        if self.llm_provider != "auto":
            return self.llm_provider
        return "openai" if (self.openai_api_key or self.openai_base_url) else "offline"

    @property
    def llm_configured(self) -> bool:
        return self.effective_llm_provider != "offline"


@lru_cache
def get_settings() -> Settings:
    return Settings()
