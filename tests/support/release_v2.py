"""The release before v3, for the upgrade test: every released version registered, v2 the
latest (what a replica of that release started new tickets on). Loaded with
WORKFLOW_VERSIONS_MODULE=tests.support.release_v2."""

from app.workflows.contracts import TICKET_WORKFLOW_V2

VERSIONS: dict = {}
LATEST = TICKET_WORKFLOW_V2
