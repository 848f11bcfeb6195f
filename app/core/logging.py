"""JSON-lines logging. Anything about a ticket carries `ticket_id` on its line."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        # Fields passed with extra={...} (ticket_id, stage, ...) become top-level keys.
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS})
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The SDK's own loggers are chatty at INFO and not JSON; keep their warnings.
    for name in ("WorkflowRuntime", "DaprWorkflowClient", "durabletask-worker", "durabletask-client"):
        logging.getLogger(name).setLevel(logging.WARNING)


class _TicketAdapter(logging.LoggerAdapter):
    def process(self, msg, kwargs):
        kwargs["extra"] = {**self.extra, **kwargs.get("extra", {})}
        return msg, kwargs


def ticket_logger(name: str, ticket_id: str) -> logging.LoggerAdapter:
    """A logger whose every line names the ticket (and keeps any other `extra` fields)."""
    return _TicketAdapter(logging.getLogger(name), {"ticket_id": ticket_id})
