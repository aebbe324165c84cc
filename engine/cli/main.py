"""`s2f`: the parser, built from one module per command, and the one place errors become exit codes.

Building the parser imports only argparse and the command modules; each command imports what it
needs when it runs. Errors print one line and exit 2 (1 when the server itself failed), without a
traceback; a command whose optional dependency is missing names the extra that installs it.
"""

from __future__ import annotations

import argparse
import sys

from speech2face.engine.cli import (bench_command, check_command, export_command, features_command, infer_command,
                                    perf_data_command, serve_command, training_commands, tune_command, web_command)
from speech2face.engine.cli.common import UsageError, missing_extra

COMMANDS = (serve_command, infer_command, export_command, check_command, tune_command, features_command,
            bench_command, training_commands, web_command, perf_data_command)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The arguments; a passthrough command (bench) gets the ones s2f does not know as `arguments`."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and not getattr(args, "passthrough", False):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.arguments = rest
    return args


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="s2f", description="Speech2Face engine: a face from a voice, on Triton.")
    commands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add(commands)
    return parser


def _known_errors() -> tuple[tuple, tuple]:
    """(errors that are the user's: exit 2, errors of the server: exit 1), of the parts installed."""
    from speech2face.engine.client import InferenceError
    from speech2face.engine.contract.audio_rules import AudioError

    user: tuple = (UsageError, AudioError, InferenceError, FileNotFoundError)
    try:
        from speech2face.engine.server.launcher import ServerError
    except ImportError:   # a client-only install has no server to fail
        return user, ()
    return user, (ServerError,)


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse(argv)
        user_errors, server_errors = _known_errors()
    except KeyboardInterrupt:   # Ctrl-C while the command is still loading: nothing started yet
        print("s2f: interrupted", file=sys.stderr)
        return 130
    try:
        return args.run(args)
    except KeyboardInterrupt:   # every server a command started is stopped on the way out
        print(f"s2f {args.command}: interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as error:
        advice = missing_extra(error)
        if advice is None:
            raise
        print(f"s2f {args.command}: needs {advice} (missing module {error.name!r})", file=sys.stderr)
        return 2
    except user_errors as error:
        print(f"s2f {args.command}: error: {error}", file=sys.stderr)
        return 2
    except server_errors as error:
        print(f"s2f {args.command}: the server failed: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
