"""The agents' workflows as named versions, like the ticket workflow (README "Changing the
workflow").

dapr-agents registers an agent's workflow plainly (`DurableAgent.register_workflows`). Here the
same registration runs against a runtime that turns that one call into
`register_versioned_workflow` under the same name; everything else it registers (its
activities) passes through unchanged. Never both: the SDK looks a name up among the plain
registrations first, so a plain one would hide every version and record none.

The ticket workflow starts an agent run by name, with no version: a new run takes the latest,
and its history records it. A run whose history records no version (started before the agents
were versioned) replays on the latest too; one that records a version no longer registered is
held STALLED until a worker that has it takes it.
"""

from __future__ import annotations

from collections.abc import Callable

from dapr.ext.workflow import WorkflowRuntime

# The agent workflow of the pinned dapr-agents (requirements.txt). Its code is the library's: a
# dapr-agents upgrade that changes the workflow's steps is a new version, and an older one stays
# registered only if its code is kept beside it.
AGENT_WORKFLOW_V1 = "a1"
AGENT_WORKFLOW_LATEST = AGENT_WORKFLOW_V1


class _VersioningRuntime:
    """The runtime as dapr-agents' registration sees it: the agent's workflow registered as a
    named version, every other registration passed through."""

    def __init__(self, runtime: WorkflowRuntime, workflow_name: str, version: str):
        self._runtime, self._workflow_name, self._version = runtime, workflow_name, version
        self.versioned = False

    def register_workflow(self, fn, *, name: str | None = None):
        if (name or fn.__name__) != self._workflow_name:
            return self._runtime.register_workflow(fn, name=name)
        self._runtime.register_versioned_workflow(fn, name=self._workflow_name, version_name=self._version,
                                                  is_latest=True)
        self.versioned = True

    def __getattr__(self, attr):
        return getattr(self._runtime, attr)


def register_versioned(register_workflows: Callable[[WorkflowRuntime], None], runtime: WorkflowRuntime,
                       workflow_name: str, version: str = AGENT_WORKFLOW_LATEST) -> None:
    """Runs an agent's own registration (`register_workflows`) on `runtime`, its workflow
    `workflow_name` registered as `version`, the latest."""
    versioning = _VersioningRuntime(runtime, workflow_name, version)
    register_workflows(versioning)
    if not versioning.versioned:
        # A dapr-agents that registers its workflow another way would leave it unversioned.
        raise RuntimeError(f"the agent did not register its workflow {workflow_name!r}")
