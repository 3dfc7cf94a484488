"""The ``huey`` command: a group of subcommands.

``huey run [consumer options] module.huey`` runs a consumer with exactly the options of
``huey_consumer`` (both are rendered from the table in :mod:`huey.consumer_options`).
A subcommand is a function that adds its parser to ``COMMANDS``' subparsers and sets
``func``; inspection commands (``huey info``, ``huey dead-letters ...``) plug in the same way.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from huey._cli_inspect import add_dead_letters, add_info
from huey.bin.huey_consumer import err, run_consumer
from huey.consumer_options import add_consumer_arguments, config_from_options


def _add_run(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a consumer (same options as huey_consumer)",
        description="Run a consumer for the Huey instance at module.attr.",
    )
    add_consumer_arguments(parser)
    parser.add_argument("huey_path", metavar="module.huey", help="import path of the Huey")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        config = config_from_options(args)
    except ValueError as exc:
        err(f"huey run: error: {exc}")
        return 1
    return run_consumer(args.huey_path, config, prog="huey run")


#: the subcommands, in the order ``huey --help`` lists them
COMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    _add_run,
    add_info,
    add_dead_letters,
]


def build_parser() -> argparse.ArgumentParser:
    """The ``huey`` argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="huey", description="huey-ng task queue tools")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for add_command in COMMANDS:
        add_command(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``huey`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    status: int = func(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
