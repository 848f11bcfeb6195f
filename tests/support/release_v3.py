"""The release before v4, for the upgrade test: every released version registered, v3 the
latest (what a replica of that release started new tickets on). Loaded with
WORKFLOW_VERSIONS_MODULE=tests.support.release_v3."""

from app.workflows.contracts import TICKET_WORKFLOW_V3

VERSIONS: dict = {}
LATEST = TICKET_WORKFLOW_V3
