"""The console's Jinja2 environment: templates, the filters they use, and one `page` helper
that adds what every page needs (the user, the CSRF token, the active navigation entry)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates

from app.console.session import ConsoleUser

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
templates = Jinja2Templates(directory=str(TEMPLATES))


def duration(seconds: float | None) -> str:
    """90 -> '1 min 30 s', 7300 -> '2 h 1 min'; None -> '-'."""
    if seconds is None:
        return "-"
    seconds = int(abs(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (secs, "s")]
    shown = [f"{n} {unit}" for n, unit in parts if n][:2]
    return " ".join(shown) or "0 s"


def when(at: str | None) -> str:
    """An ISO time as 'YYYY-MM-DD HH:MM:SS UTC'."""
    if not at:
        return "-"
    try:
        value = datetime.fromisoformat(at)
    except ValueError:
        return at
    value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def pretty(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


templates.env.filters.update(duration=duration, when=when, pretty=pretty)
templates.env.globals.update(STATIC_PREFIX="/console/static")


def page(request: Request, name: str, user: ConsoleUser | None, status_code: int = 200, **context):
    return templates.TemplateResponse(request, name, {"user": user, "csrf": user.csrf if user else "",
                                                      **context}, status_code=status_code)
