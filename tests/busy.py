"""Run a command while other processes keep every core busy.

A grade must not depend on how busy the grading machine is. This runs any
command (typically the judgement tests for the right answers) next to
``--burners`` processes that each spin on one core, then reports how much CPU
the burners really got, so the run proves what it claims::

    python tests/busy.py -- python -m pytest tests/notebooks -k right
    python tests/busy.py --burners 4 -- make grade

The exit status is the command's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

BURN = "while True: pass"


def burn(burners: int, command: list[str]) -> tuple[int, float, float]:
    """Run ``command`` next to ``burners`` busy processes; return (exit status, wall s, burner CPU s)."""
    procs = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(burners)]
    start = time.perf_counter()
    try:
        status = subprocess.run(command, check=False).returncode
    finally:
        wall = time.perf_counter() - start
        cpu = 0.0
        for proc in procs:
            proc.kill()
            _, _, usage = os.wait4(proc.pid, 0)
            proc.returncode = -9  # reaped by wait4 above
            cpu += usage.ru_utime + usage.ru_stime
    return status, wall, cpu


def main(argv: list[str] | None = None) -> int:
    """The command line; see the module docstring."""
    parser = argparse.ArgumentParser(prog="python tests/busy.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--burners", type=int, default=os.cpu_count() or 1, help="busy processes (default: one per core)"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run, after --")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    from concurrency_lab.machine import describe_machine

    load_before = os.getloadavg()[0]
    status, wall, cpu = burn(args.burners, command)
    load_after = os.getloadavg()[0]
    print(
        f"busy: {args.burners} burner process(es) used {cpu / wall:.2f} cores on average for {wall:.1f} s; "
        f"load average {load_before:.1f} -> {load_after:.1f}; {describe_machine()}",
        flush=True,
    )
    return status


if __name__ == "__main__":
    sys.exit(main())
