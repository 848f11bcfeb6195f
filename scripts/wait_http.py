"""Polls a URL until it answers 2xx (used by scripts that start servers). With --pid, gives up
as soon as that process has exited."""

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from scripts.devstack import http_ok, wait_until  # noqa: E402


class ProcessExited(Exception):
    pass


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


parser = argparse.ArgumentParser()
parser.add_argument("url")
parser.add_argument("--timeout", type=float, default=60)
parser.add_argument("--pid", type=int, help="stop waiting when this process exits")
args = parser.parse_args()


def ready() -> bool:
    if args.pid and not alive(args.pid):
        raise ProcessExited(f"process {args.pid} exited before {args.url} answered")
    return http_ok(args.url)


try:
    wait_until(ready, args.timeout, f"{args.url} did not answer in {args.timeout}s")
except (TimeoutError, ProcessExited) as error:
    sys.exit(f"[wait] {error}")
