"""``r1lab <command> ...``: one entry point; each command lives in ``r1lab/commands/<name>.py``.

A command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``;
modules are discovered, so adding a command never edits this file. User errors (bad recipe key,
bad value, missing or unreadable file, malformed row, bad flag ...) print one line on stderr and
exit with status 2, not a traceback (``-v`` shows the traceback of a file or decoding error).
Commands that take a recipe accept ``a.b=c`` overrides anywhere on the line, before or after
their flags (``r1lab rl r1_zero_tiny --no-progress grpo.steps=3``).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from r1lab.errors import R1LabError
from r1lab.registry import RegistryError


def _command_modules():
    import r1lab.commands as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"r1lab.commands.{info.name}")


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (the usage is one ``--help`` away)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="r1lab", description="Train reasoning LMs the DeepSeek-R1 way (r1lab).\n"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parser.set_defaults(_commands={})
    for mod in _command_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
        parser.get_default("_commands")[mod.NAME] = p
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line -> namespace. A command whose parser says ``intermixed`` (those taking a
    recipe and overrides) is parsed with its positionals and flags in any order."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    sub = args._commands[args.command]
    if sub.get_default("intermixed"):
        rest = argv[argv.index(args.command) + 1 :]
        for key, value in vars(sub.parse_intermixed_args(rest)).items():
            setattr(args, key, value)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except SystemExit as exc:  # usage error (already printed, one line) or --help
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args._run(args) or 0)
    except (R1LabError, RegistryError) as exc:
        print(f"r1lab: error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"r1lab: error: file not found: {exc.filename or exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a directory given as a file, no permission ...
        if args.verbose:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"r1lab: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except UnicodeDecodeError as exc:
        if args.verbose:
            raise
        print(
            f"r1lab: error: input is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} "
            f"at byte offset {exc.start})",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("r1lab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
