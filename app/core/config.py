"""Service settings, read from the environment (and `.env`); `env.template` lists every one."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, field_validator
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
    # Replaces the first-response target (e.g. "5s") for drills and tests; unset in production.
    # With SLA_OVERRIDE_CUSTOMERS (comma-separated ids) only those customers' tickets get it, so a
    # drill on a synthetic customer leaves every real customer's SLA alone.
    sla_override: float | None = None
    sla_override_customers: str = ""

    def sla_override_for(self, customer_id: str) -> float | None:
        chosen = {c.strip() for c in self.sla_override_customers.split(",") if c.strip()}
        return self.sla_override if not chosen or customer_id in chosen else None

    # LLM: "offline" needs nothing; "openai" reaches OpenAI or any OpenAI-compatible URL
    # (agents) and the Conversation API component (notifications). Unset = decided by whether
    # a key or base URL is configured.
    llm_provider: Literal["auto", "offline", "openai", "conversation"] = "auto"
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_timeout: float = 60.0

    # name:role:token entries, comma-separated; roles: client, engineer, operator. A client entry
    # may end in :CUST001|CUST002, the customers it may act for (without: every customer).
    api_tokens: str | None = None
    # Without API_TOKENS the service refuses to start, unless this says it is a development
    # machine; then the development tokens documented in the README apply. They are refused
    # outside development mode.
    dev_mode: bool = False
    # Requests per principal (and per client address for calls without a valid token), as
    # `limits` notation: "600/minute", or several budgets "20/second;600/minute". Over it: 429.
    rate_limit: str = "600/minute"
    # Request bodies over this many bytes answer 413 before they are read. Every body the API
    # accepts fits: its longest, the decision (30,000 characters of text), is under 400 KB even
    # with every character JSON-escaped.
    max_body_bytes: int = 512 * 1024
    # OpenTelemetry's gRPC client interceptor on every sidecar call (app/core/tracing.py): off
    # unless asked for, it costs about a quarter of the app's CPU under load.
    tracing_enabled: bool = False
    # Admission control (app/services/admission.py): at most this many tickets filed through
    # this process in triage or analysis at once; more filings answer 503 with Retry-After
    # rather than queue in the sidecar. 0: no bound.
    # 16, not more (measured, docs/benchmarks.md session 12): what is admitted beyond what keeps
    # the cores busy only queues in the sidecar, and every request waits behind it. At 1.5x
    # capacity, 64 let accepted filings wait 2-6 s (p99), 16 about 1 s, 8 0.45 s, each with the
    # pipeline still completing at capacity. A ticket taking a model's tens of seconds per step
    # needs more in flight for the same throughput (throughput = in flight / time per ticket).
    max_active_tickets: int = Field(default=16, ge=0)
    # The same for decisions: at most this many decided tickets whose notification and delivery
    # are still under way; more decisions answer 503 with Retry-After, before anything is recorded.
    max_active_decisions: int = Field(default=16, ge=0)
    # daprd -> app: daprd sends it as the `dapr-api-token` header on every call to the app (its
    # APP_API_TOKEN); the subscription endpoints answer only calls carrying it. The app -> daprd
    # token, DAPR_API_TOKEN, is read from the environment by the Dapr SDK itself.
    app_api_token: SecretStr | None = None

    log_level: str = "INFO"

    # The ticket read model (list, timeline): a SQL database derived from the workflows.
    read_model_url: str = "sqlite:///.data/state/read-model.db"
    # How long an agent run may take before the ticket falls back to the offline path.
    agent_timeout: float = 600.0
    # How long POST /support/approve waits for the workflow to accept or refuse a decision.
    decision_ack_timeout: float = 5.0
    # The deadline of each call the app makes to its sidecar (app/core/sidecar_deadline.py): past
    # it a request answers 503 with Retry-After instead of hanging (a sidecar without its
    # scheduler holds a start for as long as the scheduler is gone) and an activity is retried.
    sidecar_timeout: float = 10.0
    # Restart this replica's sidecar when calls for one workflow keep running into that deadline
    # for SIDECAR_WATCHDOG_AFTER while its control plane is connected: daprd 1.18.1 can wedge a
    # workflow that way until the sidecar restarts (app/core/sidecar_watchdog.py). Only where a
    # process manager starts the sidecar again (the replicated profile, Kubernetes).
    # The worker restarts it too when a turn it was handed is not applied for as long
    # (app/core/held_turns.py). At most one restart per SIDECAR_WATCHDOG_COOLDOWN. Watchdog on or
    # off, a workflow unchanged for as long whose last answer the runtime lost is woken
    # (app/core/idle_workflow_wake.py).
    sidecar_watchdog: bool = False
    sidecar_watchdog_after: float = 60.0
    sidecar_watchdog_cooldown: float = 300.0
    # Threads the workflow worker runs activities on. The SDK's default is cores + 4 (6 here):
    # activities wait on I/O (a model call up to LLM_TIMEOUT, a mail send up to 30 s), so six
    # slow ones held every other ticket's steps, whatever the CPU was doing.
    activity_threads: int = Field(default=32, ge=1)
    # Where the workflow worker runs (app/workflows/worker.py). "process": a child process of the
    # API's, so the REST handlers share neither the GIL nor the CPU with the steps' work;
    # "inline": in the API's process (one process, as before session 17).
    worker_mode: Literal["process", "inline"] = "process"
    # The worker process's niceness: under load the REST handlers go first, the steps take what
    # is left (an accepted request answers fast; the backlog waits in the workflows).
    worker_nice: int = Field(default=5, ge=0, le=19)
    # Tests and drills only: `activity@ticket-prefix,...` fails those activities (app/core/faults.py).
    fault_injection: str | None = None
    # Upgrade drills and tests only: a module adding workflow versions (app/workflows/runtime.py).
    workflow_versions_module: str | None = None

    # Customer email (app/delivery/): the bindings.smtp output binding of
    # resources/notification-email.yaml, the sender of every mail, and how long an attempt's
    # claim on a delivery lasts (longer than the binding's 30 s timeout) before a retry may
    # send it again.
    email_binding: str = "customer-email"
    email_from: str = "Dapr Support <support@support-service.example>"
    email_delivery_lease: float = 60.0
    # The mail server's message log (a Mailpit-compatible HTTP API, app/delivery/sent_log.py):
    # asked whether a mail was accepted when an attempt's outcome is unknown. Unset: an unknown
    # outcome goes to a person (escalated) rather than risk mailing the customer twice.
    email_sent_log_url: str | None = None

    # -- operators and the console (app/services/operations.py, app/console/) -------------------
    # A running instance with no progress for this long is shown as stuck (a ticket waiting for
    # a decision only once its approval timeout has also passed).
    stuck_after: float = 15 * 60
    # The health endpoints of placement and scheduler (scripts/devstack.py Ports for make run).
    placement_health_url: str = "http://127.0.0.1:58080/healthz"
    scheduler_health_url: str = "http://127.0.0.1:58081/healthz"
    # Signs the console's session cookie; unset = a random secret per process (sessions end
    # when the app restarts). Set it (32+ random characters) when running several app replicas.
    console_secret: str | None = None
    # How long a console sign-in lasts.
    console_session_max_age: float = 8 * 3600

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit(cls, value: str) -> str:  # noqa: N805 - pydantic validator
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError as error:
            raise ValueError(f"RATE_LIMIT {value!r} is not a rate (e.g. 600/minute): {error}") from None
        return value

    @field_validator("approval_timeout", "sla_override", "agent_timeout", "decision_ack_timeout", "sidecar_timeout",
                     "sidecar_watchdog_after", "sidecar_watchdog_cooldown", "stuck_after", "console_session_max_age", mode="before")
    @classmethod
    def _duration(cls, value):  # noqa: N805 - pydantic validator
        return None if value in (None, "") else parse_duration(value)

    @field_validator("email_delivery_lease", mode="before")
    @classmethod
    def _lease_duration(cls, value):  # noqa: N805 - pydantic validator
        return parse_duration(value)

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
