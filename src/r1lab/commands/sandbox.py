"""``r1lab sandbox run FILE`` / ``r1lab sandbox info``: try the code sandbox by hand.

``run`` executes one program under the sandbox's limits and prints a JSON verdict (status, exit
code, stdout/stderr heads, wall and CPU time, peak memory, isolation); the exit status is 0 when
the program's status is ``ok`` and 1 otherwise. ``info`` prints which isolation works here.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "sandbox"
HELP = "run a program in the code sandbox and print a JSON verdict (run FILE | info)"


def _add_isolation(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--isolation",
        choices=("auto", "bwrap", "none"),
        default="auto",
        help="auto: bubblewrap, refusing to run without it unless "
        "R1LAB_SANDBOX_ALLOW_UNISOLATED=1; none: opt in to the unisolated weak mode",
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="sandbox_action", required=True, metavar="ACTION")
    run_p = sub.add_parser("run", help="run FILE in the sandbox, print a JSON verdict")
    run_p.add_argument("file", help="program source file")
    run_p.add_argument("--stdin", metavar="FILE", help="file whose bytes are fed to stdin")
    run_p.add_argument("--timeout", type=float, default=10.0, metavar="S", help="wall seconds")
    run_p.add_argument("--memory", type=int, default=1024, metavar="MB", help="address space")
    run_p.add_argument("--language", default="python", help="program language (default python)")
    run_p.add_argument("--head", type=int, default=2000, help="stdout/stderr characters shown")
    _add_isolation(run_p)
    info_p = sub.add_parser("info", help="print which isolation mechanism works here")
    _add_isolation(info_p)


def run(args: argparse.Namespace) -> int:
    from r1lab.data.loaders import read_text_file
    from r1lab.sandbox import Program, SandboxConfig, describe_isolation, execute

    if args.sandbox_action == "info":
        print(describe_isolation(SandboxConfig(isolation=args.isolation)))
        return 0
    source = read_text_file(args.file)
    stdin = Path(args.stdin).read_bytes() if args.stdin else b""
    cfg = SandboxConfig(timeout_s=args.timeout, memory_mb=args.memory, isolation=args.isolation)
    result = execute(Program(source, language=args.language, stdin=stdin), cfg)
    print(json.dumps(result.verdict(head_chars=args.head), indent=2))
    return 0 if result.ok else 1
