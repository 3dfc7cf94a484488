"""``huey_consumer [options] path.to.huey_instance``: run a consumer (spec section 16.3).

Also runnable as ``python -m huey.bin.huey_consumer``. The ``huey run`` subcommand of the
``huey`` command shares :func:`run_consumer` and the option table, so both behave the same.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from huey.constants import WORKER_GREENLET, WORKER_PROCESS
from huey.consumer_options import ConsumerConfig, OptionParserHandler, config_from_options
from huey.exceptions import ConfigurationError
from huey.utils import load_class


def err(s: str) -> None:
    """Print an error line to stderr (in red when stderr is a terminal)."""
    if sys.stderr.isatty():
        s = f"\033[91m{s}\033[0m"
    sys.stderr.write(s + "\n")


def load_huey(path: str) -> Any:
    """Import ``module.attr``; on ImportError retry once with the current directory on
    ``sys.path`` (so ``huey_consumer app.huey`` works from the project directory)."""
    try:
        return load_class(path)
    except ImportError:
        cwd = os.getcwd()
        if cwd in sys.path:
            raise
        sys.path.insert(0, cwd)
        return load_class(path)


def _patch_for_gevent() -> None:
    # Greenlets only switch on cooperative I/O: patch the stdlib before the app is imported.
    try:
        from gevent import monkey
    except ImportError as exc:
        raise ImportError(
            "greenlet workers need gevent: pip install 'huey-ng[gevent]' "
            "(or choose -k thread / -k process)"
        ) from exc
    monkey.patch_all()


def run_consumer(path: str, config: ConsumerConfig, prog: str = "huey_consumer") -> int:
    """Load the Huey instance at ``path`` and run its consumer; return the exit status."""
    if config.worker_type == WORKER_PROCESS and sys.platform == "win32":
        err(f"{prog}: error: process workers need fork(), which Windows lacks; use -k thread")
        return 1
    if config.worker_type in (WORKER_GREENLET, "gevent"):
        try:
            _patch_for_gevent()
        except ImportError as exc:
            err(f"{prog}: error: {exc}")
            return 1
    try:
        huey = load_huey(path)
    except Exception as exc:
        err(f"{prog}: error: cannot load the Huey instance {path!r}: {exc}")
        return 1
    if not callable(getattr(huey, "create_consumer", None)):
        err(f"{prog}: error: {path!r} is a {type(huey).__name__}, not a Huey instance")
        return 1
    config.setup_logger()
    try:
        consumer = huey.create_consumer(**config.values)
    except (ConfigurationError, ValueError, ImportError) as exc:
        err(f"{prog}: error: {exc}")
        return 1
    consumer.run()
    return 0


def consumer_main(argv: list[str] | None = None) -> None:
    """Entry point of the ``huey_consumer`` console script; exits with the status."""
    parser = OptionParserHandler().get_option_parser()
    options, args = parser.parse_args(argv)
    if not args:
        err(
            "huey_consumer: error: missing the import path of the Huey instance "
            "(for example: huey_consumer main.app.huey)"
        )
        sys.exit(1)
    if len(args) > 1:
        err(f"huey_consumer: error: expected one import path, got {len(args)}: {args}")
        sys.exit(1)
    try:
        config = config_from_options(options)
    except ValueError as exc:
        err(f"huey_consumer: error: {exc}")
        sys.exit(1)
    sys.exit(run_consumer(args[0], config))


if __name__ == "__main__":
    consumer_main()
