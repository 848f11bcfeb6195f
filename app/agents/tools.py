"""The agents' tools. Each call runs in its own activity, at least once: every tool only reads.

The customer tools take no arguments: they serve the ticket's own customer (see `binding`), so
no model output, however the ticket text steers it, can reach another customer's records.
"""

# No `from __future__ import annotations`: dapr-agents builds each tool's argument schema from
# its signature and needs real types there.

from dapr_agents import tool
from pydantic import BaseModel, Field

from app.agents.binding import ticket_customer_id
from app.activities import deps
from app.domain.customer import Customer, SystemInfo
from app.knowledge.search import get_knowledge_search

SEARCH_RESULTS = 5


@tool
def lookup_customer() -> dict:
    """The customer who filed this ticket: name and support plan."""
    customer_id = ticket_customer_id()
    record = deps.current().customers.get_value(customer_id)
    if record is None:
        return {"customer_id": customer_id, "found": False}
    # The contact address stays out of the conversation: the model has no use for it.
    return Customer.model_validate(record).model_dump(include={"customer_id", "name", "plan"})


@tool
def lookup_system_info() -> dict:
    """The systems of the customer who filed this ticket: Dapr version, cloud, platform and
    applications."""
    customer_id = ticket_customer_id()
    record = deps.current().systems.get_value(customer_id)
    if record is None:
        return {"customer_id": customer_id, "found": False}
    return SystemInfo.model_validate(record).model_dump()


class SearchArgs(BaseModel):
    query: str = Field(description="What to look for: an error message, a symptom, a component "
                                   "or a question, in a few words.")


@tool(args_model=SearchArgs)
def search_knowledge_base(query: str) -> list[dict]:
    """Searches the Dapr support knowledge base; returns the best matching articles (slug,
    title, category, relevance score, a snippet). Cite articles by slug."""
    return [hit.model_dump() for hit in get_knowledge_search().search(query, k=SEARCH_RESULTS)]


TRIAGE_TOOLS = (lookup_customer, lookup_system_info)
EXPERT_TOOLS = (search_knowledge_base,)
