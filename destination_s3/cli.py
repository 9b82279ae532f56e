"""The `write` command without the CDK: `python main.py write --config PATH --catalog PATH`.

Importing airbyte_cdk costs over a second of CPU before the first record, on every sync; `write`
needs none of it. It reads stdin as raw bytes and prints raw lines (no message object per record),
and its LOG and TRACE messages are the CDK's (destination_s3.protocol). Every failure ends as one
ERROR LOG and one TRACE message, exit code 1. `spec` and `check` stay with the CDK.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import orjson

from destination_s3.catalog import read_catalog
from destination_s3.errors import Cancelled, CatalogError, Failed, Failure, FailureType
from destination_s3.operations import validated_config, write_lines
from destination_s3.protocol import Output, install, trace_message
from destination_s3.reader import LineBlocks
from destination_s3.tuning import Tuning

logger = logging.getLogger("airbyte")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The CDK's Destination.parse_args parser, so that usage, help and errors read the same (a
    wrong or missing argument: the usage on stderr, exit code 2)."""
    main_parser = argparse.ArgumentParser()
    subparsers = main_parser.add_subparsers(title="commands", dest="command")
    subparsers.add_parser("spec", help="outputs the json configuration specification")
    check_parser = subparsers.add_parser(
        "check", help="checks the config can be used to connect"
    ).add_argument_group("required named arguments")
    check_parser.add_argument(
        "--config", type=str, required=True, help="path to the json configuration file"
    )
    write_parser = subparsers.add_parser(
        "write", help="Writes data to the destination"
    ).add_argument_group("required named arguments")
    write_parser.add_argument(
        "--config", type=str, required=True, help="path to the JSON configuration file"
    )
    write_parser.add_argument(
        "--catalog", type=str, required=True, help="path to the configured catalog JSON file"
    )
    parsed = main_parser.parse_args(list(argv))
    if parsed.command != "write":
        main_parser.error(f"this entry point runs only the write command, not {parsed.command}")
    return parsed


def read_config(path: str) -> Any:
    """The config file's JSON (its validation is validated_config's)."""

    def unusable(problem: str, error: Exception) -> Failed:
        message = f"The config file {path} {problem}."
        return Failed(Failure(message, message, FailureType.CONFIG_ERROR, error))

    try:
        with open(path, "rb") as file:
            raw = file.read()
    except OSError as error:
        raise unusable(f"cannot be read: {error.strerror or error}", error) from None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        # The decoder's message gives the position, never the text (which may hold a secret).
        raise unusable(f"is not valid JSON: {error}", error) from None


def main(argv: Sequence[str]) -> NoReturn:
    args = parse_args(argv)
    output = install(sys.stdout.buffer)
    # An orchestrator cancels a job with SIGTERM: unwind like any failure, so open uploads are
    # aborted and the cancellation is reported, instead of dying mid-request.
    signal.signal(signal.SIGTERM, _raise_cancelled)
    try:
        _write(args.config, args.catalog, output)
        # Everything is written: a late SIGTERM must not turn success into a failure.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    except (Exception, Cancelled) as error:
        _fail(output, failure_of(error))
    _exit(0)


def _write(config_path: str, catalog_path: str, output: Output) -> None:
    config = validated_config(read_config(config_path))
    catalog = read_catalog(catalog_path)
    tuning = Tuning.from_environment()
    blocks = LineBlocks(sys.stdin.buffer, tuning.tick_seconds)
    for line in write_lines(config, catalog, blocks, tuning):
        output.line(line)


def failure_of(error: BaseException) -> Failure:
    """How a `write` that raised `error` is reported."""
    if isinstance(error, Failed):
        return error.failure
    if isinstance(error, CatalogError):  # read_catalog, before the sync starts
        return error.traced()
    if isinstance(error, Cancelled):
        return Failure(f"The sync was {error}.", str(error), FailureType.SYSTEM_ERROR, error)
    return Failure.unexpected(error)


def _fail(output: Output, failure: Failure) -> NoReturn:
    # The report is the last thing this process does: a SIGTERM must not cut it short.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        logger.error(failure.internal_message or failure.message or "sync failed")
        output.line(trace_message(failure))
    finally:
        # Upload threads may still be inside retries against an unreachable S3; exiting the
        # interpreter normally would wait for them. Everything to say has been said (or stdout
        # is gone, and there is no one left to say it to).
        _exit(1)


def _exit(code: int) -> NoReturn:
    # Tearing down the interpreter takes long enough that an orchestrator's SIGTERM after our
    # answer would land in it, after Python restored the default handler: exit at once instead.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _raise_cancelled(signum: int, frame: object) -> None:
    # Once: a second SIGTERM must not interrupt the abort of open uploads that the first started.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Cancelled(f"cancelled by signal {signal.Signals(signum).name}")


__all__ = ["failure_of", "main", "parse_args", "read_config"]
