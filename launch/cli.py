"""What every launcher shares: a parser with a worked example, and one way to end on an error."""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Callable


def new_parser(prog: str, description: str, example: str) -> argparse.ArgumentParser:
    """A parser whose ``--help`` ends with a complete, copy-paste example."""
    return argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog="example:\n" + textwrap.indent(textwrap.dedent(example).strip(), "  "),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def key_value(text: str) -> tuple[str, str]:
    """``name=value`` -> (name, value); for argparse ``type=``."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name.strip(), value


def run(main: Callable[[argparse.Namespace], int], parser: argparse.ArgumentParser,
        argv: list[str] | None) -> int:
    """Parse, run, and turn AWS and input errors into one line on stderr and exit status 1."""
    args = parser.parse_args(argv)
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return main(args)
    except (ClientError, BotoCoreError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
