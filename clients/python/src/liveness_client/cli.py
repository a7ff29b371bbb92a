"""``livenessctl``: call the liveness gateway from a shell.

    livenessctl detect FILE | --url URL | --id ID
    livenessctl upload FILE | --url URL
    livenessctl antihack FILE | --image-id ID [--image OUT] [--extra]
    livenessctl health [--service NAME]

Human-readable output by default, ``--json`` for scripts. A failure prints one line on stderr
and exits with a code that tells the failure class apart (see EXIT_CODES / the README).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from liveness_client._version import __version__
from liveness_client.channel import DEFAULT_TARGET, DEFAULT_TIMEOUT_S, TLSConfig
from liveness_client.client import LivenessClient
from liveness_client.exceptions import (
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    LivenessError,
    PermissionDenied,
    RateLimited,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from liveness_client.results import AntiHackResult

PROG = "livenessctl"

EXIT_OK = 0
EXIT_ERROR = 1
"""Any other gRPC failure (UNKNOWN, UNIMPLEMENTED, NOT_FOUND, CANCELLED, ...)."""
EXIT_USAGE = 2
"""Bad arguments, or a local file that cannot be read or written (argparse also uses 2)."""
EXIT_NOT_SERVING = 10
"""``health``: the server answered, but not SERVING."""

EXIT_CODES: Sequence[tuple[type[LivenessError], int]] = (
    # Order matters: a subclass before its base.
    (InvalidArgument, 3),
    (RateLimited, 5),
    (ResourceExhausted, 4),
    (Unavailable, 6),
    (DeadlineExceeded, 7),
    (Internal, 8),
    (Unauthenticated, 9),
    (PermissionDenied, 9),
)


def exit_code_for(error: LivenessError) -> int:
    for cls, code in EXIT_CODES:
        if isinstance(error, cls):
            return code
    return EXIT_ERROR


class UsageError(Exception):
    """A local problem: bad arguments or an unreadable/unwritable file."""


def _parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)

    def add_common(parser: argparse.ArgumentParser, suppress: bool) -> None:
        # The options are accepted before and after the command; after it, only when given,
        # so that "livenessctl --json detect f" keeps its --json.
        def d(value: Any) -> Any:
            return argparse.SUPPRESS if suppress else value

        parser.add_argument(
            "--target",
            default=d(env.get("LIVENESS_TARGET") or DEFAULT_TARGET),
            help=f"gateway host:port [env LIVENESS_TARGET; default {DEFAULT_TARGET}]",
        )
        parser.add_argument(
            "--json", action="store_true", default=d(False), help="print JSON for scripts"
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=d(DEFAULT_TIMEOUT_S),
            help=f"deadline in seconds, retries included [default {DEFAULT_TIMEOUT_S}]",
        )
        parser.add_argument("--request-id", default=d(None), help="x-request-id to send")
        parser.add_argument(
            "--tls", action="store_true", default=d(False), help="use TLS (system roots)"
        )
        parser.add_argument("--ca", default=d(None), help="PEM CA bundle to trust (implies --tls)")
        parser.add_argument("--cert", default=d(None), help="PEM client certificate for mTLS")
        parser.add_argument("--key", default=d(None), help="PEM client private key for mTLS")
        parser.add_argument(
            "--token-file",
            default=d(None),
            help="file holding a bearer token [or env LIVENESS_AUTH_TOKEN]",
        )

    root = argparse.ArgumentParser(prog=PROG, description="Call the liveness gateway.")
    root.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_common(root, suppress=False)
    add_common(common, suppress=True)
    sub = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    detect = sub.add_parser("detect", parents=[common], help="score with LinkFace (Detect)")
    source = detect.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", help="liveness data file ('-' for stdin)")
    source.add_argument("--url", help="url the vendor downloads the liveness data from")
    source.add_argument("--id", help="liveness_data_id returned by upload")

    upload = sub.add_parser("upload", parents=[common], help="store at LinkFace (Upload)")
    source = upload.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", help="liveness data file ('-' for stdin)")
    source.add_argument("--url", help="url the vendor downloads the liveness data from")

    anti = sub.add_parser("antihack", parents=[common], help="score with AccuAuth (AntiHack)")
    source = anti.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", help="liveness data file ('-' for stdin)")
    source.add_argument("--image-id", help="image id from the H5 liveness SDK")
    anti.add_argument("--image", metavar="OUT", help="ask for the face image and write it to OUT")
    anti.add_argument("--extra", action="store_true", help="ask for the face quality signals")
    for command in (detect, upload, anti):
        command.add_argument(
            "--idempotency-key",
            metavar="UUID",
            help="request_id (AIP-155) to send; upload makes one when not given",
        )

    health = sub.add_parser("health", parents=[common], help="grpc.health.v1 check")
    health.add_argument("--service", default="", help="service name ('' is the whole server)")
    return root


def _read_input(path: str | None) -> bytes | None:
    if path is None:
        return None
    try:
        return sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror or error}") from None


def _tls(args: argparse.Namespace) -> TLSConfig | None:
    if not (args.tls or args.ca or args.cert or args.key):
        return None
    try:
        return TLSConfig.from_files(args.ca, args.cert, args.key)
    except OSError as error:
        raise UsageError(f"cannot read TLS file: {error}") from None
    except ValueError as error:
        raise UsageError(str(error)) from None


def _token(args: argparse.Namespace, env: Mapping[str, str]) -> str | None:
    if args.token_file:
        try:
            return Path(args.token_file).read_text().strip() or None
        except OSError as error:
            raise UsageError(f"cannot read {args.token_file}: {error.strerror}") from None
    return env.get("LIVENESS_AUTH_TOKEN") or None


def _run(args: argparse.Namespace, client: LivenessClient) -> tuple[dict[str, Any], int]:
    """Make the call; return what to print and the exit code."""
    call: dict[str, Any] = {"request_id": args.request_id}
    if args.command != "health":
        call["idempotency_key"] = args.idempotency_key
    match args.command:
        case "detect":
            detected = client.detect(
                _read_input(args.file), url=args.url, liveness_data_id=args.id, **call
            )
            return detected.to_dict(), EXIT_OK
        case "upload":
            uploaded = client.upload(_read_input(args.file), url=args.url, **call)
            return uploaded.to_dict(), EXIT_OK
        case "antihack":
            result = client.anti_hack(
                _read_input(args.file),
                image_id=args.image_id,
                return_image=args.image is not None,
                return_extra=args.extra,
                **call,
            )
            out = result.to_dict()
            if args.image is not None:
                out["image_file"] = _write_image(args.image, result)
            return out, EXIT_OK
        case _:
            status = client.health(args.service, **call)
            return {"status": status}, EXIT_OK if status == "SERVING" else EXIT_NOT_SERVING


def _write_image(path: str, result: AntiHackResult) -> str | None:
    if result.image is None:
        return None
    try:
        Path(path).write_bytes(result.image)
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror or error}") from None
    return path


def _human(command: str, out: Mapping[str, Any]) -> list[str]:
    if command == "health":
        return [str(out["status"])]
    rows: list[tuple[str, Any]] = []
    for key, value in out.items():
        if key == "quality":
            rows.extend((f"quality.{k}", v) for k, v in (value or {}).items() if v is not None)
        elif (key == "image_bytes" and value is None) or (key == "idempotency_key" and not value):
            continue
        elif key == "image_file":
            rows.append(("image", f"written to {value}" if value else "not sent by the vendor"))
        elif value is not None:
            rows.append((key, value))
    width = max(len(key) for key, _ in rows)
    return [f"{key.ljust(width)}  {_fmt(value)}" for key, value in rows]


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value) if value != "" else "-"


def _error_line(error: LivenessError) -> str:
    notes = [f"{k}={v}" for k, v in sorted(error.metadata.items())]
    notes += [
        violation
        for violation in (f"{v.field}: {v.description}" for v in error.field_violations)
        if violation not in error.message
    ]
    if error.retry_after is not None:
        notes.append(f"retry after {error.retry_after:g}s")
    if error.request_id:
        notes.append(f"request id {error.request_id}")
    if error.idempotency_key:
        notes.append(f"idempotency key {error.idempotency_key}")
    line = str(error)
    return f"{line} ({', '.join(notes)})" if notes else line


def _error_json(error: LivenessError) -> dict[str, Any]:
    return {
        "error": {
            "code": error.grpc_code.name,
            "reason": error.reason,
            "message": error.message,
            "metadata": dict(error.metadata),
            "retry_after": error.retry_after,
            "request_id": error.request_id,
            "idempotency_key": error.idempotency_key,
            "field_violations": [
                {"field": v.field, "description": v.description} for v in error.field_violations
            ],
            "exit_code": exit_code_for(error),
        }
    }


def main(
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    env = os.environ if env is None else env
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    args = _parser(env).parse_args(argv)
    try:
        client = LivenessClient(
            args.target, tls=_tls(args), auth_token=_token(args, env), timeout=args.timeout
        )
        with client:
            out, code = _run(args, client)
    except (UsageError, ValueError) as error:  # ValueError: an argument the client refused
        print(f"{PROG}: error: {error}", file=stderr)
        return EXIT_USAGE
    except LivenessError as error:
        print(f"{PROG}: error: {_error_line(error)}", file=stderr)
        if args.json:
            print(json.dumps(_error_json(error)), file=stdout)
        return exit_code_for(error)
    if args.json:
        print(json.dumps(out), file=stdout)
    else:
        print("\n".join(_human(args.command, out)), file=stdout)
    return code


if __name__ == "__main__":
    sys.exit(main())
