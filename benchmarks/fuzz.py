"""Schemathesis against the service's own OpenAPI document (`make fuzz`; a bounded run is in
`make test`, tests/integration/test_fuzz.py).

    python -m benchmarks.fuzz [--max-examples 300] [--seed 1]

Every operation the document lists, with a valid engineer token, in the examples, coverage and
fuzzing phases, with every check schemathesis has (`--checks all`): among them no 5xx, every
status code, header, content type and body as documented, data the document calls valid
accepted and data it calls invalid refused (so the document states every constraint the server
enforces), authentication enforced; and every 4xx carries a JSON body with a message
(benchmarks/fuzz_checks.py). Exits non-zero when a check fails; prints schemathesis's report.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.support import REPO, new_service  # noqa: E402
from tests.support.harness import TEST_TOKENS, Service  # noqa: E402

# "all" takes in the project's own check (client_error_has_json_message) too.
CHECKS = "all"


def run_schemathesis(service: Service, max_examples: int, seed: int, workers: int = 1,
                     report_dir: Path | None = None, timeout: float = 1800) -> subprocess.CompletedProcess:
    st = Path(sys.executable).with_name("st")
    command = [str(st), "run", f"{service.url}/openapi.json",
               "--header", f"Authorization: Bearer {TEST_TOKENS['engineer']}",
               "--checks", CHECKS, "--phases", "examples,coverage,fuzzing",
               "--max-examples", str(max_examples), "--seed", str(seed), "--workers", str(workers),
               "--request-timeout", "30", "--continue-on-failure", "--no-color"]
    if report_dir:
        command += ["--report", "junit", "--report-dir", str(report_dir)]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "benchmarks.fuzz_checks",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    # Run in the service's own directory: Schemathesis and Hypothesis keep their caches in the cwd.
    return subprocess.run(command, cwd=service.workdir, env=env, capture_output=True, text=True, timeout=timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-examples", type=int, default=300, help="per operation and phase")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--base-port", type=int, default=31040)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args(argv)
    service = new_service("fuzz", args.base_port, app_env={"APPROVAL_TIMEOUT": "1h"}, workdir=args.workdir)
    try:
        service.start()
        service.load_sample_data()
        result = run_schemathesis(service, args.max_examples, args.seed, args.workers,
                                  report_dir=service.workdir / "schemathesis")
    finally:
        service.stop()
    print(result.stdout)
    print(result.stderr, file=sys.stderr)
    print(f"schemathesis exit code {result.returncode}; logs in {service.workdir}")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
