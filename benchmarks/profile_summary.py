"""Where a py-spy profile's time goes: `python -m benchmarks.profile_summary FILE [--top 25]`.

FILE holds collapsed stacks (`py-spy record -f raw`, as `make bench PROFILE=DIR` writes). Prints
the functions with the most samples on the stack (inclusive) and at the top (self), and the
share of each of the service's own modules (app/...).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter

_FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def summarize(path: str, top: int = 25) -> str:
    total, own, inclusive, modules = 0, Counter(), Counter(), Counter()
    for line in open(path, encoding="utf-8", errors="replace"):
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_name(f) for f in stack.split(";")]
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
        app_frames = {f.split(" ", 1)[1] for f in frames if " app/" in f}
        for module in app_frames:
            modules[module] += n
    if not total:
        return "no samples"
    lines = [f"{total} samples"]
    lines += ["", "inclusive (on the stack):"] + [f"{n * 100 / total:5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    lines += ["", "self (at the top):"] + [f"{n * 100 / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    lines += ["", "the service's modules (inclusive):"] + [f"{n * 100 / total:5.1f}%  {m}" for m, n in modules.most_common(top)]
    return "\n".join(lines)


def _name(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame
    file = match.group("file")
    for marker in ("site-packages/", "/work/", "lib/python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{match.group('func')} {file}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    print(summarize(args.file, args.top))


if __name__ == "__main__":
    main()
