"""The release before v2, for the upgrade test: every released version registered, v1 the
latest (what a replica of that release started new tickets on). Loaded with
WORKFLOW_VERSIONS_MODULE=tests.support.release_v1."""

from app.workflows.contracts import TICKET_WORKFLOW_V1

VERSIONS: dict = {}
LATEST = TICKET_WORKFLOW_V1
