"""The connector's own Airbyte protocol output for `write`: LOG, TRACE and raw lines on stdout.

Importing airbyte_cdk costs more CPU than an empty sync, so `write` prints its messages itself.
They are the CDK's byte for byte (unit_tests/test_protocol.py compares them with the CDK's own
classes): the same JSON fields in the same order, the same level names, secrets masked the same
way (`filter_secrets`: each secret's text replaced by `****`; in a LOG, in the message before it
is serialized; in a TRACE, in the serialized line). No airbyte_cdk import here.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from types import TracebackType
from typing import Any, BinaryIO

import orjson

from destination_s3.errors import Failed, Failure

# The CDK's AirbyteTracedException says this when a failure has no user-facing message.
GENERIC_MESSAGE = "Something went wrong in the connector. See the logs for more details."

# A secret this short would mask every occurrence of its letters in every later message; the
# connector never prints a config value, so masking is only a second line of defence.
SHORTEST_MASKED_SECRET = 4

# The CDK's AirbyteLogFormatter.level_mapping. It has no entry for other levels (it then fails to
# serialize the record at all); they are printed as INFO here instead.
_LEVEL_NAMES = {
    logging.CRITICAL: "FATAL",
    logging.ERROR: "ERROR",
    logging.WARNING: "WARN",
    logging.INFO: "INFO",
    logging.DEBUG: "DEBUG",
}

# A LogRecord's own attributes: the others are `extra=` fields, shown by DEBUG records.
_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, None, None, None).__dict__)

_secrets: list[str] = []


def register_secrets(values: Iterable[str]) -> None:
    """Mask these config values from now on (replacing the previous ones, as the CDK's
    update_secrets does), except values too short to mask safely."""
    global _secrets
    _secrets = [value for value in values if len(value) >= SHORTEST_MASKED_SECRET]


def registered_secrets() -> list[str]:
    return list(_secrets)


def mask(text: str) -> str:
    # One replace per secret in registration order: the CDK's filter_secrets, so that the same
    # overlapping secrets mask the same way.
    for secret in _secrets:
        text = text.replace(secret, "****")
    return text


class Output:
    """stdout as whole lines: upload threads log while the main thread prints STATE messages, so
    every line is written and flushed under one lock; a line is out as soon as it is written."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def line(self, data: bytes) -> None:
        with self._lock:
            self._stream.write(data + b"\n")
            self._stream.flush()


def log_message(level: str, message: str) -> bytes:
    return orjson.dumps({"type": "LOG", "log": {"level": level, "message": message}})


def trace_message(failure: Failure) -> bytes:
    """The TRACE ERROR line for a failure: AirbyteTracedException.emit_message's."""
    error: dict[str, Any] = {"message": failure.message or GENERIC_MESSAGE}
    if failure.internal_message is not None:  # the CDK leaves out a field that is None
        error["internal_message"] = failure.internal_message
    error["stack_trace"] = stack_trace(failure)
    error["failure_type"] = failure.failure_type.value
    now_millis = time.time_ns() // 1_000_000
    trace = {"type": "ERROR", "emitted_at": now_millis, "error": error}
    return mask(orjson.dumps({"type": "TRACE", "trace": trace}).decode()).encode()


def stack_trace(failure: Failure) -> str:
    # A failure without an exception shows itself, unraised, as the CDK shows its own exception.
    exception = failure.exception or Failed(failure)
    return "".join(traceback.TracebackException.from_exception(exception).format())


class LogHandler(logging.Handler):
    """Log records as LOG lines: what the CDK's AirbyteLogFormatter makes of them."""

    def __init__(self, output: Output) -> None:
        super().__init__()
        self._output = output
        # The CDK's format string: the message, then the exception's traceback if any.
        self.setFormatter(logging.Formatter("%(message)s"))

    def line(self, record: logging.LogRecord) -> bytes:
        if record.levelno != logging.DEBUG:
            level = _LEVEL_NAMES.get(record.levelno, "INFO")
            return log_message(level, mask(self.format(record)))
        # DEBUG records (never emitted by the `airbyte` logger, which stops at INFO) carry their
        # `extra=` fields: the CDK prints them as a LOG only when the platform asks for debug
        # logs, and otherwise as a non-protocol line.
        extra_keys = set(record.__dict__) - _RECORD_ATTRIBUTES
        extras = {key: str(getattr(record, key)) for key in extra_keys}
        if os.environ.get("LOG_LEVEL", "info").lower() == "debug":
            text = f"{mask(record.getMessage())} ///\nExtra logs: {mask(json.dumps(extras))}"
            return log_message("DEBUG", text)
        debug = {"type": "DEBUG", "message": record.getMessage(), "data": extras}
        return mask(json.dumps(debug)).encode()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._output.line(self.line(record))
        except Exception:
            self.handleError(record)


def install(stream: BinaryIO) -> Output:
    """Send the process's messages to `stream` as the CDK's entry point does: every logger's
    records as LOG lines (the CDK puts its handler on the root logger, so library warnings show
    too), `airbyte` loggers from INFO, and an uncaught exception as a FATAL LOG and a TRACE."""
    output = Output(stream)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(LogHandler(output))
    logger = logging.getLogger("airbyte")
    logger.setLevel(logging.INFO)

    def report_uncaught(
        kind: type[BaseException], exception: BaseException, trace: TracebackType | None
    ) -> None:
        if issubclass(kind, KeyboardInterrupt):  # a developer's Ctrl-C: the usual traceback
            sys.__excepthook__(kind, exception, trace)
            return
        logger.critical(exception, exc_info=exception)
        failure = exception.failure if isinstance(exception, Failed) else None
        output.line(trace_message(failure or Failure.unexpected(exception)))

    sys.excepthook = report_uncaught
    return output


__all__ = [
    "GENERIC_MESSAGE",
    "SHORTEST_MASKED_SECRET",
    "LogHandler",
    "Output",
    "install",
    "log_message",
    "mask",
    "register_secrets",
    "registered_secrets",
    "stack_trace",
    "trace_message",
]
