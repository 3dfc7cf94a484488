"""Inspection subcommands of the ``huey`` command: ``info`` and ``dead-letters``.

Each loads the Huey instance named by ``module.attr`` and prints plain text (one line per
item), so the output is easy to read and to pipe.
"""

from __future__ import annotations

import argparse
import datetime
from typing import Any

from huey.bin.huey_consumer import err, load_huey


def _load(path: str) -> Any:
    try:
        huey = load_huey(path)
    except Exception as exc:
        err(f"huey: error: could not import {path!r}: {exc}")
        return None
    if not hasattr(huey, "dead_letters"):
        err(f"huey: error: {path!r} is not a Huey instance (got {type(huey).__name__})")
        return None
    return huey


def add_info(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "info", help="show queue, schedule, result and dead-letter counts"
    )
    parser.add_argument("huey_path", metavar="module.huey", help="import path of the Huey")
    parser.set_defaults(func=_info)


def _info(args: argparse.Namespace) -> int:
    huey = _load(args.huey_path)
    if huey is None:
        return 1
    print(f"name:          {huey.name}")
    print(f"storage:       {type(huey.storage).__name__}")
    print(f"delivery:      {'at most once' if huey.at_most_once else 'at least once'}")
    print(f"pending:       {huey.pending_count()}")
    print(f"scheduled:     {huey.scheduled_count()}")
    print(f"results:       {huey.result_count()}")
    print(f"dead letters:  {huey.dead_letter_count()}")
    tasks = sorted(huey._registry._registry)
    print(f"tasks:         {len(tasks)}")
    for name in tasks:
        print(f"  {name}")
    return 0


def add_dead_letters(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dead-letters",
        help="list, requeue or delete dead letters (tasks set aside)",
        description="Tasks set aside instead of being lost: crash loops and messages that "
        "could not be decoded.",
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION", dest="action")
    listing = actions.add_parser("list", help="list dead letters, oldest first")
    listing.add_argument("--limit", type=int, default=None, help="show at most N")
    actions.add_parser("count", help="print the number of dead letters")
    requeue = actions.add_parser("requeue", help="put dead letters back on the queue")
    which = requeue.add_mutually_exclusive_group(required=True)
    which.add_argument("ids", nargs="*", default=[], metavar="ID", help="dead-letter ids")
    which.add_argument("--all", action="store_true", help="requeue every dead letter")
    delete = actions.add_parser("delete", help="delete dead letters")
    which = delete.add_mutually_exclusive_group(required=True)
    which.add_argument("ids", nargs="*", default=[], metavar="ID", help="dead-letter ids")
    which.add_argument("--all", action="store_true", help="delete every dead letter")
    for sub in (listing, actions.choices["count"], requeue, delete):
        sub.add_argument("huey_path", metavar="module.huey", help="import path of the Huey")
    parser.set_defaults(func=_dead_letters, parser=parser)


def _describe(huey: Any, data: bytes) -> str:
    try:
        task = huey.deserialize_task(data)
    except Exception:
        return f"<undecodable, {len(data)} bytes>"
    return repr(task)


def _dead_letters(args: argparse.Namespace) -> int:
    if args.action is None:
        args.parser.print_help()
        return 2
    huey = _load(args.huey_path)
    if huey is None:
        return 1
    if args.action == "count":
        print(huey.dead_letter_count())
    elif args.action == "list":
        for letter in huey.dead_letters(args.limit):
            when = datetime.datetime.fromtimestamp(letter.timestamp).isoformat(" ", "seconds")
            print(f"{letter.id}  {when}  {_describe(huey, letter.data)}  -- {letter.reason}")
    elif args.all:
        if args.action == "requeue":
            print(f"requeued {huey.requeue_dead_letters()} dead letter(s)")
        else:
            count = huey.dead_letter_count()
            huey.flush_dead_letters()
            print(f"deleted {count} dead letter(s)")
    else:
        act = huey.requeue_dead_letter if args.action == "requeue" else huey.delete_dead_letter
        missing = [letter_id for letter_id in args.ids if not act(letter_id)]
        done = len(args.ids) - len(missing)
        print(f"{args.action}d {done} dead letter(s)")
        if missing:
            err(f"huey: no dead letter with id {', '.join(missing)}")
            return 1
    return 0
