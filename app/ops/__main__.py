"""`python -m app.ops`: the operators' terminal command. It lists workflow instances, prints an
instance's history and performs the console's actions, through the sidecar's workflow API (the
SDK, at DAPR_GRPC_PORT) and with the same audit as the console (actor `cli:<os user>`).

It exists because the pinned Dapr CLI (1.16.5) prints `null` for `dapr workflow history`
against daprd 1.18: the CLI reads the workflow actors' state directly, which daprd 1.18 refuses;
the runtime's own GetInstanceHistory answers.

    python -m app.ops list [--status running] [--stuck] [--older-than 2h] [--json]
    python -m app.ops show ID            # input, output, custom status, children, audit
    python -m app.ops history ID [--full] [--json]
    python -m app.ops raise-event ID EVENT '{"approved": true, "revision": 0}'
    python -m app.ops suspend ID [--reason TEXT] | resume ID | terminate ID [--reason TEXT]
    python -m app.ops purge ID | purge --older-than-days N
    python -m app.ops rerun ID EVENT_ID [--new-id NEW]
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path

from app.core.config import get_settings, parse_duration
from app.services import operations
from app.services.operations import Actor
from app.services.tickets import TicketError


def _actor() -> Actor:
    return Actor(f"cli:{getpass.getuser()}", "operator")


def _read_model(settings):
    """The app's read model, if it is where the settings say (relative to this directory);
    None otherwise (the app's own sweep then corrects the ticket's row)."""
    from app.readmodel.store import ReadModel

    path = Path(settings.read_model_url.removeprefix("sqlite:///"))
    if not path.exists():
        print(f"note: no read model at {path}; the app's sweep will update the ticket list", file=sys.stderr)
        return None
    return ReadModel(settings.read_model_url)


def _short(value, full: bool, width: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return text if full or len(text) <= width else text[:width] + "…"


def print_listing(listing: operations.InstanceListing) -> None:
    header = (f"{'INSTANCE':<34} {'KIND':<9} {'VERSION':<8} {'STATUS':<10} {'STAGE':<18} {'CREATED':<25} "
              f"{'IDLE':>8}  STUCK")
    print(header)
    for row in listing.rows:
        idle = f"{row.idle_seconds:.0f}s" if row.idle_seconds is not None else "-"
        print(f"{row.instance_id:<34} {row.kind:<9} {row.version or '-':<8} {row.runtime_status.upper():<10} "
              f"{row.stage or '-':<18} {(row.created_at or '-')[:25]:<25} {idle:>8}  {'STUCK' if row.stuck else ''}"
              + (f"\n      stalled: {row.stalled_reason}" if row.stalled_reason else ""))
    counts = ", ".join(f"{k.upper()} {v}" for k, v in sorted(listing.by_status.items()))
    stages = ", ".join(f"{k} {v}" for k, v in sorted(listing.by_stage.items()))
    print(f"\n{listing.total} instances: {counts or 'none'}; stages: {stages or 'none'}; stuck: {listing.stuck}"
          + (" (listing truncated)" if listing.truncated else ""))
    running = ", ".join(f"{k} {v}" for k, v in sorted(listing.running_by_version.items()))
    print(f"still running per workflow version: {running or 'none'}")


def print_history(events: list[dict], full: bool) -> None:
    for event in events:
        print(f"#{event['index']:<4} {(event['at'] or '-')[:26]:<26} {event['kind']:<30} {event['summary']}")
        for name in ("input", "output", "failure"):
            if event.get(name) not in (None, {}, ""):
                print(f"      {name}: {_short(event[name], full)}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app.ops", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="every workflow instance, with counts and stuck ones")
    listing.add_argument("--status", choices=operations.RUNTIME_STATUSES)
    listing.add_argument("--older-than", help="created at least this long ago (30s, 2h, 3d)")
    listing.add_argument("--newer-than", help="created at most this long ago")
    listing.add_argument("--stuck", action="store_true")
    listing.add_argument("--version", help="only tickets on this workflow version (v1, v2)")
    listing.add_argument("--json", action="store_true")
    show = commands.add_parser("show", help="an instance: input, output, custom status, children, audit")
    show.add_argument("instance_id")
    history = commands.add_parser("history", help="an instance's history from the runtime")
    history.add_argument("instance_id")
    history.add_argument("--full", action="store_true", help="do not shorten inputs and outputs")
    history.add_argument("--json", action="store_true")
    raise_event = commands.add_parser("raise-event", help="raise an external event")
    raise_event.add_argument("instance_id")
    raise_event.add_argument("event")
    raise_event.add_argument("data", nargs="?", default="null", help="the payload, as JSON")
    for name in ("suspend", "resume", "terminate"):
        action = commands.add_parser(name, help=f"{name} an instance")
        action.add_argument("instance_id")
        action.add_argument("--reason")
    purge = commands.add_parser("purge", help="delete a finished instance, or all finished older than N days")
    purge.add_argument("instance_id", nargs="?")
    purge.add_argument("--older-than-days", type=float)
    rerun = commands.add_parser("rerun", help="rerun a finished instance from an activity's event")
    rerun.add_argument("instance_id")
    rerun.add_argument("event_id", type=int)
    rerun.add_argument("--new-id")
    return parser


def run(args: argparse.Namespace, workflows, records, settings, read_model_factory=_read_model) -> int:
    command = args.command
    if command == "list":
        listing = operations.list_instances(
            workflows, settings, status=args.status,
            older_than=parse_duration(args.older_than) if args.older_than else None,
            newer_than=parse_duration(args.newer_than) if args.newer_than else None, stuck_only=args.stuck,
            version=args.version)
        if args.json:
            print(json.dumps(listing.as_dict(), indent=2))
        else:
            print_listing(listing)
        return 0
    if command == "show":
        detail = operations.instance_detail(workflows, records, settings, args.instance_id)
        detail.pop("history")
        print(json.dumps(detail, indent=2))
        return 0
    if command == "history":
        operations.get_instance(workflows, args.instance_id)  # a clear "no instance" first
        events = operations.render_history(workflows.history(args.instance_id))
        if args.json:
            print(json.dumps(events, indent=2))
        else:
            print_history(events, args.full)
        return 0
    actor = _actor()
    if command == "raise-event":
        try:
            data = json.loads(args.data)
        except ValueError:
            print(f"error: the payload is not JSON: {args.data!r}", file=sys.stderr)
            return 2
        result = operations.raise_event(workflows, records, actor, args.instance_id, args.event, data)
    elif command in ("suspend", "resume", "terminate"):
        result = getattr(operations, command)(workflows, records, read_model_factory(settings), actor,
                                              args.instance_id, args.reason)
    elif command == "purge":
        if (args.instance_id is None) == (args.older_than_days is None):
            print("error: give an instance id or --older-than-days N", file=sys.stderr)
            return 2
        read_model = read_model_factory(settings)
        result = (operations.purge(workflows, records, read_model, actor, args.instance_id) if args.instance_id
                  else operations.purge_finished(workflows, records, read_model, actor, args.older_than_days))
    else:
        result = operations.rerun_from_event(workflows, records, actor, args.instance_id, args.event_id, args.new_id)
    print(json.dumps(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    from dapr.clients import DaprClient

    from app.core.sidecar_deadline import sidecar_deadline
    from app.services.workflow_gateway import DaprWorkflows
    from app.store import StateStore

    dapr = DaprClient(interceptors=[sidecar_deadline(settings.sidecar_timeout, settings.llm_timeout)])
    workflows = DaprWorkflows(timeout=settings.sidecar_timeout)
    try:
        return run(args, workflows, StateStore(dapr, settings.analysis_store), settings)
    except TicketError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 1
    except ValueError as error:  # a malformed duration
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # piped into head: not an error
        sys.stderr.close()
        return 0
    finally:
        workflows.close()
        dapr.close()


if __name__ == "__main__":
    sys.exit(main())
