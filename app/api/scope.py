"""Which customers and tickets a principal reaches.

Support staff (engineer, operator) reach every customer. A client without a scope in API_TOKENS
is a trusted integration: it files for every customer and reads the tickets it filed. A scoped
client files only for its customers and reads only the tickets it filed for them; what it may
not reach looks to it the same whether or not it exists.
"""

from __future__ import annotations

import logging

from fastapi import HTTPException, status

from app.core.security import Principal

logger = logging.getLogger(__name__)

# One answer for "exists but not yours" and "does not exist": a scoped client learns nothing
# about other customers from it.
OUT_OF_SCOPE = "this token may not file tickets for customer {customer_id!r}"


def check_filing_scope(principal: Principal, customer_id: str) -> None:
    """403 when a scoped client names a customer outside its scope. Call it before looking the
    customer up, so neither the answer nor its timing depends on whether the customer exists."""
    if not principal.may_act_for(customer_id):
        _log_denied("customer outside the client's scope", principal, customer_id=customer_id)
        raise HTTPException(status.HTTP_403_FORBIDDEN, OUT_OF_SCOPE.format(customer_id=customer_id))


def check_filing(principal: Principal, customer_id: str, customer_exists: bool) -> None:
    """May this principal file a ticket for customer_id?

    Scoped client, customer outside its scope (known or not): 403, one message. Anyone else (and
    a scoped client naming one of its own customers) with an unknown customer: 404."""
    check_filing_scope(principal, customer_id)
    if not customer_exists:
        raise HTTPException(404, f"unknown customer_id {customer_id!r}")


def can_read(principal: Principal, ticket_customer_id: str | None, filed_by: str | None) -> bool:
    """May this principal read the ticket? False must be answered as 404, as for a ticket that
    does not exist (ticket ids are not disclosed)."""
    if principal.role != "client":
        return True
    if filed_by == principal.name and principal.may_act_for(ticket_customer_id):
        return True
    _log_denied("ticket not readable by this client", principal)
    return False


def sees_full_status(principal: Principal) -> bool:
    """Support staff see the whole status; clients the client view (app/domain/client_status.py)."""
    return principal.role != "client"


def _log_denied(reason: str, principal: Principal, **fields) -> None:
    logger.warning("access denied", extra={"reason": reason, "principal": principal.name,
                                           "role": principal.role, **fields})
