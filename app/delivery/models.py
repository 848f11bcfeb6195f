"""What a delivery takes and returns: the result of one attempt, the delivery record kept in the
state store, and the input/output of the workflow activity that delivers a notification."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# uncertain: an earlier attempt may have sent it and nothing can tell (no mail log to ask).
DeliveryStatus = Literal["sent", "failed", "uncertain"]
# unknown: the call broke after the request may have reached the mail server.
RecordStatus = Literal["sending", "sent", "failed", "unknown"]


class DeliveryRecord(BaseModel):
    """`delivery:{notification_id}` in the state store: one per notification, whatever the
    number of attempts. `sending` is a claim that lasts `lease_until`; `sending` past its lease
    and `unknown` mean an attempt may have sent it (see app/delivery/email.py)."""

    model_config = ConfigDict(extra="ignore")

    notification_id: str
    ticket_id: str
    channel: Literal["email"] = "email"
    status: RecordStatus
    attempts: int = 0
    subject: str | None = None
    claimed_at: str | None = None
    lease_until: str | None = None
    sent_at: str | None = None
    last_error: str | None = None
    # "mail log" when an unknown outcome was settled by finding the mail in the server's log.
    confirmed_by: str | None = None
    # The reasons of the failed attempts, oldest first (at most the last 10).
    failures: list[dict] = Field(default_factory=list)


class DeliveryResult(BaseModel):
    """The outcome of one call of deliver_notification."""

    notification_id: str
    ticket_id: str
    status: DeliveryStatus
    # Attempts that reached the mail server so far (this one included).
    attempts: int
    # Why it failed: the binding's error, or that another attempt holds the claim.
    reason: str | None = None
    sent_at: str | None = None
    # True when an earlier call had sent it: this call sent nothing.
    already_sent: bool = False
    # How an earlier attempt's unknown outcome was settled: "mail log" (the server had it).
    confirmed_by: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status == "sent"


class NotificationToDeliver(BaseModel):
    """The fields of the stored notification (`notification:{ticket_id}`) a delivery needs."""

    model_config = ConfigDict(extra="ignore")

    ticket_id: str
    customer_id: str | None = None
    kind: str | None = None
    subject: str
    body: str
    # Defaults to "{ticket_id}:notification", the id the notification is published under.
    notification_id: str | None = None


class DeliverNotificationInput(BaseModel):
    """Input of the workflow activity `deliver_notification`. It carries no address: the
    activity reads the customer's current contact email, so no address is in workflow history.
    The notification is given whole (v1, v2) or (v3) by its kind: the activity reads the
    ticket's notification record of that kind."""

    # The notification's ticket, at the top as in every activity input (the activity log reads it).
    ticket_id: str
    # Left out of the JSON while unset: v1 and v2 instances replay the inputs they recorded.
    notification: NotificationToDeliver | None = Field(default=None, exclude_if=lambda value: value is None)
    kind: str | None = Field(default=None, exclude_if=lambda value: value is None)
    # The ticket's priority sets the mail's X-Priority (critical 1 ... low 4); None -> 3.
    priority: str | None = None

    @model_validator(mode="after")
    def _same_ticket(self):
        if (self.notification is None) == (self.kind is None):
            raise ValueError("give either the notification or its kind")
        if self.notification is not None and self.notification.ticket_id != self.ticket_id:
            raise ValueError(f"notification of ticket {self.notification.ticket_id} "
                             f"given for ticket {self.ticket_id}")
        return self


class DeliverNotificationOutput(BaseModel):
    """Output of the workflow activity: `sent`, `no_address` (escalate at once: retrying cannot
    help) or `uncertain` (an earlier attempt may have mailed it and no mail log can tell:
    escalate rather than mail twice). A failed send is raised as DeliveryFailed so the retry
    policy retries it."""

    notification_id: str
    ticket_id: str
    status: Literal["sent", "no_address", "uncertain"]
    attempts: int = 0
    sent_at: str | None = None
    already_sent: bool = False
    reason: str | None = None

    @property
    def reached_customer(self) -> bool:
        """False for no_address and uncertain: a person must follow up."""
        return self.status == "sent"
