"""The `write` command's own LOG and TRACE lines are the CDK's, byte for byte.

Each case builds the same failure or log record twice: once printed by destination_s3.protocol,
once by the CDK's own classes (AirbyteTracedException.emit_message, AirbyteLogFormatter) in this
process. Only `emitted_at` (the clock) may differ.
"""

from __future__ import annotations

import io
import logging
import re
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from airbyte_cdk.logger import AirbyteLogFormatter
from airbyte_cdk.models import FailureType as CdkFailureType
from airbyte_cdk.utils.airbyte_secrets_utils import update_secrets
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from destination_s3 import protocol
from destination_s3.cli import failure_of
from destination_s3.destination import traced_exception
from destination_s3.errors import (
    Cancelled,
    Failed,
    Failure,
    FailureType,
    InputError,
    S3Failure,
)
from destination_s3.operations import validated_config
from destination_s3.storage import StorageError

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYzEXAMPLEKEY"
EMITTED_AT = re.compile(rb'"emitted_at":\d+')


@pytest.fixture(autouse=True)
def secrets() -> Iterator[None]:
    """The same secret registered with both filters, forgotten after the test."""
    protocol.register_secrets([SECRET])
    update_secrets([SECRET])
    yield
    protocol.register_secrets([])
    update_secrets([])


def raised(make: Callable[[], BaseException]) -> BaseException:
    """An exception with a traceback, as the connector reports them."""
    try:
        raise make()
    except BaseException as error:  # Cancelled is a BaseException
        return error


def cdk_trace_line(exception: AirbyteTracedException, capsys: pytest.CaptureFixture[str]) -> bytes:
    capsys.readouterr()
    exception.emit_message()
    return capsys.readouterr().out.rstrip("\n").encode()


def assert_same_trace(ours: bytes, theirs: bytes) -> dict[str, Any]:
    """Equal bytes once emitted_at is set aside; returns our message, decoded."""
    mine, cdk = orjson.loads(ours), orjson.loads(theirs)
    assert isinstance(mine["trace"]["emitted_at"], int)
    assert abs(mine["trace"]["emitted_at"] - cdk["trace"]["emitted_at"]) < 60_000
    assert EMITTED_AT.sub(b"", ours) == EMITTED_AT.sub(b"", theirs)
    ours_trace, cdk_trace = (
        mine["trace"]["error"]["stack_trace"],
        cdk["trace"]["error"]["stack_trace"],
    )
    assert ours_trace.splitlines()[0] == cdk_trace.splitlines()[0]
    assert ours_trace.splitlines()[-1] == cdk_trace.splitlines()[-1]
    assert SECRET.encode() not in ours
    message: dict[str, Any] = mine
    return message


def config_error() -> tuple[Failure, AirbyteTracedException]:
    with pytest.raises(Failed) as invalid:
        validated_config({"s3_bucket_name": "x"})
    failure = invalid.value.failure
    cdk = AirbyteTracedException(
        message=failure.message,
        internal_message=failure.message,
        failure_type=CdkFailureType.config_error,
        exception=failure.exception,
    )
    return failure, cdk


def input_error() -> tuple[Failure, AirbyteTracedException]:
    error = raised(lambda: InputError(7, "not JSON", b"{oops"))
    cdk = AirbyteTracedException(
        message=str(error),
        internal_message=str(error),
        failure_type=CdkFailureType.system_error,
        exception=error,
    )
    assert isinstance(error, InputError)
    return error.traced(), cdk


def storage_error() -> tuple[Failure, AirbyteTracedException]:
    detail = f"The request signature we calculated does not match; key {SECRET}"
    s3_failure = S3Failure("s3:PutObject on s3://b/k", "SignatureDoesNotMatch", detail, True)
    error = raised(lambda: StorageError(s3_failure))
    message = s3_failure.sentence("b")
    cdk = AirbyteTracedException(
        message=message,
        internal_message=message,
        failure_type=CdkFailureType.config_error,
        exception=error,
    )
    return s3_failure.traced("b", error), cdk


def unexpected_error() -> tuple[Failure, AirbyteTracedException]:
    error = raised(lambda: ValueError(f"boom with {SECRET} in it"))
    return failure_of(error), AirbyteTracedException.from_exception(error)


def cancellation() -> tuple[Failure, AirbyteTracedException]:
    error = raised(lambda: Cancelled("cancelled by signal SIGTERM; no upload was open"))
    cdk = AirbyteTracedException(
        message=f"The sync was {error}.",
        internal_message=str(error),
        failure_type=CdkFailureType.system_error,
        exception=error,
    )
    return failure_of(error), cdk


@pytest.mark.parametrize(
    "case", [config_error, input_error, storage_error, unexpected_error, cancellation]
)
def test_trace_lines_are_the_cdks(
    case: Callable[[], tuple[Failure, AirbyteTracedException]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    failure, cdk = case()
    message = assert_same_trace(protocol.trace_message(failure), cdk_trace_line(cdk, capsys))
    error = message["trace"]["error"]
    assert error["failure_type"] == failure.failure_type.value
    # The CDK path (check, the in-process write) converts a Failure into the same exception.
    assert_same_trace(
        protocol.trace_message(failure), cdk_trace_line(traced_exception(failure), capsys)
    )


def test_a_secret_in_a_storage_error_is_masked(capsys: pytest.CaptureFixture[str]) -> None:
    failure, _ = storage_error()
    error = orjson.loads(protocol.trace_message(failure))["trace"]["error"]
    assert "key ****" in error["message"] and "key ****" in error["internal_message"]
    assert "key ****" in error["stack_trace"]


def test_an_unexpected_error_gets_the_cdks_generic_message() -> None:
    failure, _ = unexpected_error()
    error = orjson.loads(protocol.trace_message(failure))["trace"]["error"]
    assert error["message"] == protocol.GENERIC_MESSAGE
    assert error["internal_message"] == "boom with **** in it"
    assert error["failure_type"] == "system_error"
    assert error["stack_trace"].splitlines()[-1] == "ValueError: boom with **** in it"


def test_a_failure_without_an_exception_shows_itself_unraised(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The one difference: the CDK names its own exception class, we name ours.
    failure = Failure("Nothing to write.", None, FailureType.SYSTEM_ERROR)
    ours = orjson.loads(protocol.trace_message(failure))
    theirs = orjson.loads(cdk_trace_line(traced_exception(failure), capsys))
    assert (
        ours["trace"]["error"].pop("stack_trace")
        == "destination_s3.errors.Failed: Nothing to write.\n"
    )
    assert theirs["trace"]["error"].pop("stack_trace") == (
        "airbyte_cdk.utils.traced_exception.AirbyteTracedException: Nothing to write.\n"
    )
    del ours["trace"]["emitted_at"], theirs["trace"]["emitted_at"]
    assert ours == theirs


def log_record(
    level: int, message: str, *args: object, exc_info: Any = None, **extra: Any
) -> logging.LogRecord:
    record = logging.LogRecord("airbyte", level, __file__, 1, message, args or None, exc_info)
    record.__dict__.update(extra)
    return record


def exc_info() -> Any:
    error = raised(lambda: RuntimeError(f"upload failed with {SECRET}"))
    return (type(error), error, error.__traceback__)


RECORDS: dict[str, Callable[[], logging.LogRecord]] = {
    "info": lambda: log_record(logging.INFO, "Starting sync: %s", "bucket=b"),
    "warning": lambda: log_record(logging.WARNING, "Ignored unknown config fields: x."),
    "error": lambda: log_record(logging.ERROR, "sync failed"),
    "fatal": lambda: log_record(logging.CRITICAL, "crashed"),
    "secret in the message": lambda: log_record(logging.INFO, "key %s rejected", SECRET),
    "with exc_info": lambda: log_record(logging.ERROR, "abort failed", exc_info=exc_info()),
    "fatal with exc_info": lambda: log_record(logging.CRITICAL, "x", exc_info=exc_info()),
    "non-ASCII and control characters": lambda: log_record(
        logging.INFO, 'é "q" \\ \n\t\x00 \u2028'
    ),
    "debug with extras": lambda: log_record(logging.DEBUG, "request %s", SECRET, body=SECRET),
}


@pytest.mark.parametrize("platform_debug", [False, True])
@pytest.mark.parametrize("name", RECORDS)
def test_log_lines_are_the_cdks(
    name: str, platform_debug: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if platform_debug:
        monkeypatch.setenv("LOG_LEVEL", "debug")
    ours = protocol.LogHandler(protocol.Output(io.BytesIO())).line(RECORDS[name]())
    theirs = AirbyteLogFormatter(fmt="%(message)s").format(RECORDS[name]()).encode()
    assert ours == theirs
    assert SECRET.encode() not in ours


def test_a_level_the_cdk_cannot_name_is_printed_as_info() -> None:
    record = log_record(25, "between INFO and WARNING")
    line = protocol.LogHandler(protocol.Output(io.BytesIO())).line(record)
    assert orjson.loads(line) == {
        "type": "LOG",
        "log": {"level": "INFO", "message": "between INFO and WARNING"},
    }
    with pytest.raises(Exception, match="INFO"):  # the CDK fails to serialize it at all
        AirbyteLogFormatter(fmt="%(message)s").format(log_record(25, "x"))


def test_secrets_shorter_than_four_characters_are_not_masked() -> None:
    protocol.register_secrets(["abc", "abcd", ""])
    assert protocol.registered_secrets() == ["abcd"]
    assert protocol.mask("abc abcd abcde") == "abc **** ****e"


def test_lines_from_many_threads_stay_whole() -> None:
    stream = io.BytesIO()
    output = protocol.Output(stream)
    lines = [bytes([65 + n]) * 5000 for n in range(8)]

    def write(line: bytes) -> None:
        for _ in range(50):
            output.line(line)

    threads = [threading.Thread(target=write, args=(line,)) for line in lines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    written = stream.getvalue().split(b"\n")
    assert written.pop() == b""
    assert sorted(written) == sorted(lines * 50)


@pytest.fixture
def installed() -> Iterator[io.BytesIO]:
    """protocol.install on a buffer, undone after the test."""
    root, airbyte = logging.getLogger(), logging.getLogger("airbyte")
    handlers, level, hook = list(root.handlers), airbyte.level, sys.excepthook
    stream = io.BytesIO()
    protocol.install(stream)
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    airbyte.setLevel(level)
    sys.excepthook = hook


def test_install_prints_every_loggers_warnings_and_airbyte_info(installed: io.BytesIO) -> None:
    logging.getLogger("airbyte").info("from the connector")
    logging.getLogger("airbyte").debug("not shown")
    logging.getLogger("botocore.test").info("not shown either")
    logging.getLogger("botocore.test").warning("a library warning")
    messages = [orjson.loads(line)["log"] for line in installed.getvalue().splitlines()]
    assert messages == [
        {"level": "INFO", "message": "from the connector"},
        {"level": "WARN", "message": "a library warning"},
    ]


def test_an_uncaught_exception_is_a_fatal_log_and_a_system_error_trace(
    installed: io.BytesIO,
) -> None:
    error = raised(lambda: KeyError(f"lost {SECRET}"))
    sys.excepthook(type(error), error, error.__traceback__)
    log, trace = (orjson.loads(line) for line in installed.getvalue().splitlines())
    assert log["log"]["level"] == "FATAL"
    assert log["log"]["message"].startswith("'lost ****'\nTraceback (most recent call last):")
    assert trace["trace"]["error"]["failure_type"] == "system_error"
    assert trace["trace"]["error"]["internal_message"] == "'lost ****'"
    assert SECRET.encode() not in installed.getvalue()
