"""What every launcher shares: a parser with a worked example, and one way to end on an error."""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Callable

from launch.quiet import quiet_sdk

# AWS error codes that mean the credentials are wrong or stale, not the request.
BAD_CREDENTIAL_CODES = {"ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId",
                        "UnrecognizedClientException", "InvalidSignatureException",
                        "SignatureDoesNotMatch"}
REFRESH_CREDENTIALS = ("refresh your AWS credentials (`aws sso login --profile NAME`, or new "
                       "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN)")


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


def error_line(exc: BaseException) -> str:
    """One line that says what went wrong and, for setup problems, how to fix it."""
    from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError

    from launch.session import NO_CREDENTIALS, NO_REGION

    if isinstance(exc, NoRegionError):
        return NO_REGION
    if isinstance(exc, NoCredentialsError):
        return NO_CREDENTIALS
    message = " ".join(str(exc).split())
    if isinstance(exc, ClientError) and exc.response.get("Error", {}).get(
            "Code") in BAD_CREDENTIAL_CODES:
        return f"{message}; {REFRESH_CREDENTIALS}"
    return message


def run(main: Callable[[argparse.Namespace], int], parser: argparse.ArgumentParser,
        argv: list[str] | None) -> int:
    """Parse, run, and turn AWS and input errors into one line on stderr and exit status 1."""
    args = parser.parse_args(argv)
    quiet_sdk()
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return main(args)
    except (ClientError, BotoCoreError, ValueError, OSError) as exc:
        print(f"error: {error_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
