"""JSON-lines logging. Anything about a ticket carries `ticket_id` on its line."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}


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


def json_handler() -> logging.Handler:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    return handler


def configure_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    root.handlers[:] = [json_handler()]
    root.setLevel(level.upper())
    # uvicorn's loggers print plain text through their own handlers: route them through ours.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # httpx logs every request at INFO: the readiness probes (every second from the load
    # balancer) would drown the log. Its failures still reach us as exceptions.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))


def sdk_logger_options():
    """The workflow SDK's loggers, in JSON. Its activity-failure warnings lack the ticket id, so
    they are left to the app's own activity logging (ERROR and up only)."""
    from dapr.ext.workflow.logger import LoggerOptions

    return LoggerOptions(log_level=logging.ERROR, log_handler=json_handler(), log_formatter=JsonFormatter())


class _TicketAdapter(logging.LoggerAdapter):
    def process(self, msg, kwargs):
        kwargs["extra"] = {**self.extra, **kwargs.get("extra", {})}
        return msg, kwargs


def ticket_logger(name: str, ticket_id: str) -> logging.LoggerAdapter:
    """A logger whose every line names the ticket (and keeps any other `extra` fields)."""
    return _TicketAdapter(logging.getLogger(name), {"ticket_id": ticket_id})
