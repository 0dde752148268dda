"""``python -m chaos --seed N --kills 20``: run the fault-injection scenario, print the table.

Exit status 0 when every invariant held, 1 otherwise. The work directory (Temporal's
SQLite file, worker logs, config) is kept with ``--workdir`` for post-mortems.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from pathlib import Path

from chaos.providers import FAULTS
from chaos.scenario import ChaosOptions, run_scenario
from chaos.table import render


def main(argv: list[str] | None = None) -> int:
    """Parse options, run the scenario, print the table."""
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kills", type=int, default=20, help="worker SIGKILLs (default 20)")
    parser.add_argument("--incidents", type=int, default=6)
    parser.add_argument("--fault-rate", type=float, default=0.3)
    parser.add_argument(
        "--fault-kinds",
        default=",".join(FAULTS),
        help=f"comma-separated, drawn uniformly per failing call (default {','.join(FAULTS)})",
    )
    parser.add_argument("--no-server-restart", action="store_true")
    parser.add_argument(
        "--break-dedup-keys",
        action="store_true",
        help="plant a bug (a new PagerDuty dedup key per attempt): the run must report it",
    )
    parser.add_argument("--workdir", type=Path, help="keep state and logs here")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(message)s",
    )
    opts = ChaosOptions(
        seed=args.seed,
        kills=args.kills,
        incidents=args.incidents,
        fault_rate=args.fault_rate,
        fault_kinds=tuple(k for k in args.fault_kinds.split(",") if k),
        restart_server=not args.no_server_restart,
        break_dedup_keys=args.break_dedup_keys,
    )
    if args.workdir:
        report = asyncio.run(run_scenario(args.workdir, opts))
    else:
        with tempfile.TemporaryDirectory(prefix="fireline-chaos-") as tmp:
            report = asyncio.run(run_scenario(Path(tmp), opts))
    print(render(report))
    sys.stdout.flush()
    return 0 if report.held else 1


if __name__ == "__main__":
    sys.exit(main())
