"""Offline customer messages: used when no LLM is configured, and flagged as such."""

from __future__ import annotations

from typing import Literal

NotificationKind = Literal["resolved", "not_entitled", "escalated", "cancelled"]

COMMUNITY_HELP = ("the Dapr community on Discord (https://aka.ms/dapr-discord) and GitHub "
                  "discussions, or upgrade to a Professional or Enterprise support plan")


def offline_message(kind: NotificationKind, customer_name: str | None, ticket_id: str,
                    solution: str | None = None, reason: str | None = None) -> tuple[str, str]:
    """(subject, body) for a customer message composed without an LLM."""
    hello = f"Hello {customer_name}," if customer_name else "Hello,"
    if kind == "resolved":
        return (f"Ticket {ticket_id}: proposed solution",
                f"{hello}\n\nOur support engineers reviewed your ticket {ticket_id}. "
                f"Here is the solution they approved:\n\n{solution}\n\n"
                "Reply to this message if the problem persists.")
    if kind == "not_entitled":
        return (f"Ticket {ticket_id}: how to get help",
                f"{hello}\n\nWe received ticket {ticket_id}, but your current plan does not "
                f"include support tickets ({reason}). You can get help from {COMMUNITY_HELP}.")
    if kind == "escalated":
        return (f"Ticket {ticket_id}: a support engineer will follow up",
                f"{hello}\n\nYour ticket {ticket_id} needs a closer look than usual. It has been "
                "escalated, and a support engineer will contact you personally.")
    return (f"Ticket {ticket_id}: closed",
            f"{hello}\n\nYour ticket {ticket_id} was closed by our support team"
            f"{f' ({reason})' if reason else ''}. Open a new ticket if you still need help.")
