"""The DurableAgent both ticket agents are: durable state in the agent-state store, the
workflow's retry shape, tools bound to the ticket that started the run, and no console
transcript. LLM mode only: importing it imports dapr_agents."""

from __future__ import annotations

from collections.abc import Iterable

from dapr.ext.workflow import WorkflowActivityContext, WorkflowRuntime
from dapr_agents import DurableAgent
from dapr_agents.agents.configs import (AgentExecutionConfig, AgentMCPConfig, AgentStateConfig,
                                        WorkflowRetryPolicy)
from dapr_agents.agents.utils.text_printer import ColorTextFormatter
from dapr_agents.llm.chat import ChatClientBase
from dapr_agents.storage.daprstores.stateservice import StateStoreService
from dapr_agents.tool import AgentTool

from app.agents.binding import run_scope, ticket_scope
from app.agents.versions import register_versioned

# Every activity of a run (each LLM call, each tool call) retries like the ticket workflow's
# LLM_RETRY: three attempts, 1 s then 2 s apart. A run that still fails fails its child
# workflow, and the ticket workflow falls back to the offline path.
AGENT_RETRY = WorkflowRetryPolicy(max_attempts=3, initial_backoff_seconds=1, max_backoff_seconds=10,
                                  backoff_multiplier=2.0)


class TicketAgent(DurableAgent):
    def register_workflows(self, runtime: WorkflowRuntime) -> None:
        # dapr-agents' own registration, its workflow as a named version (see versions).
        register_versioned(super().register_workflows, runtime, self.agent_workflow_name)

    def run_tool(self, ctx: WorkflowActivityContext, payload: dict) -> dict:
        # The activity's workflow is the agent run the ticket workflow started: the tools serve
        # that run's ticket (see binding). Read here, not in a tool, so that a failed read fails
        # the activity, which the retry policy retries; dapr-agents would hand a tool's error to
        # the model as the tool's result.
        token = ticket_scope.set(run_scope(ctx.workflow_id))
        try:
            return super().run_tool(ctx, payload)
        finally:
            ticket_scope.reset(token)


class SilentTextFormatter(ColorTextFormatter):
    """DurableAgent prints every message to stdout; these conversations hold customer data."""

    def print_colored_text(self, text_blocks) -> None:
        pass


def build_ticket_agent(*, name: str, role: str, goal: str, instructions: list[str],
                       tools: Iterable[AgentTool], llm: ChatClientBase, state_store: str,
                       max_iterations: int) -> TicketAgent:
    """Needs the sidecar up: a DurableAgent reads the sidecar's metadata when it is built."""
    agent = TicketAgent(
        name=name, role=role, goal=goal, instructions=instructions, tools=list(tools), llm=llm,
        # Durable run state (task, messages, tool results): a resumed run carries on from it.
        state=AgentStateConfig(store=StateStoreService(store_name=state_store)),
        execution=AgentExecutionConfig(max_iterations=max_iterations),
        retry_policy=AGENT_RETRY,
        # Only the tools given here: an MCP server's tools would not be bound to the ticket.
        mcp=AgentMCPConfig(enabled=False),
    )
    agent.text_formatter = SilentTextFormatter()
    return agent
