"""Rules about what imports what, read from the source (AST), so they cannot rot: the workflow
imports only its contracts and the workflow SDK; the API never imports the workflow or an
activity."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_the_workflow_imports_only_its_contracts_and_the_workflow_sdk():
    allowed_stdlib = {"__future__", "logging", "datetime"}
    for module in imported_modules(APP / "workflows" / "ticket_workflow.py"):
        root = module.split(".")[0]
        assert (root in allowed_stdlib or module.startswith("dapr.ext.workflow")
                or module in ("app.workflows", "app.workflows.contracts")), module


def test_the_api_imports_neither_the_workflow_nor_an_activity():
    api_files = [*(APP / "api").rglob("*.py"), *(APP / "services").rglob("*.py"), APP / "main.py"]
    for path in api_files:
        for module in imported_modules(path):
            if path.name == "main.py" and module in ("app.workflows.runtime", "app.activities.deps",
                                                     "app.activities"):
                continue  # the lifespan starts the worker and hands the activities their clients
            assert not module.startswith("app.activities"), (path, module)
            assert module not in ("app.workflows.ticket_workflow", "app.workflows.runtime"), (path, module)


def test_the_contract_module_names_every_registered_activity():
    from app.workflows import contracts
    from app.workflows.runtime import ACTIVITIES

    names = {v for k, v in vars(contracts.Activities).items() if not k.startswith("_")}
    assert set(ACTIVITIES) == names
