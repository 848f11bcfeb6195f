"""Polls a URL until it answers 2xx (used by scripts that start servers)."""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from scripts.devstack import http_ok, wait_until  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("url")
parser.add_argument("--timeout", type=float, default=60)
args = parser.parse_args()
try:
    wait_until(lambda: http_ok(args.url), args.timeout, f"{args.url} did not answer in {args.timeout}s")
except TimeoutError as error:
    sys.exit(str(error))
