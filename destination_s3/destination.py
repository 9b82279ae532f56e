"""DestinationS3: the Airbyte CDK connector class (spec, check, write)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, BinaryIO

import orjson
from airbyte_cdk.destinations import Destination
from airbyte_cdk.exception_handler import init_uncaught_exception_handler
from airbyte_cdk.logger import PRINT_BUFFER
from airbyte_cdk.models import (
    AirbyteConnectionStatus,
    AirbyteMessage,
    AirbyteMessageSerializer,
    ConfiguredAirbyteCatalog,
    ConfiguredAirbyteCatalogSerializer,
    FailureType,
    Status,
    Type,
)
from airbyte_cdk.utils.airbyte_secrets_utils import filter_secrets, update_secrets
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from destination_s3.check import run_check
from destination_s3.config import ConnectorConfig
from destination_s3.errors import Cancelled, CatalogError, InputError
from destination_s3.reader import LineBatches
from destination_s3.storage import StorageError, open_bucket
from destination_s3.sync import Sync, Tuning
from destination_s3.validation import ConfigError, secret_values, validate_config

logger = logging.getLogger("airbyte")


class DestinationS3(Destination):
    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        try:
            validated = _validated(config)
        except AirbyteTracedException as invalid:
            return AirbyteConnectionStatus(status=Status.FAILED, message=invalid.message)
        succeeded, message = run_check(validated)
        return AirbyteConnectionStatus(
            status=Status.SUCCEEDED if succeeded else Status.FAILED,
            message=filter_secrets(message),
        )

    def write(
        self,
        config: Mapping[str, Any],
        configured_catalog: ConfiguredAirbyteCatalog,
        input_messages: Iterable[AirbyteMessage],
    ) -> Iterable[AirbyteMessage]:
        """The CDK's in-process interface, for callers that already hold message objects."""
        catalog = ConfiguredAirbyteCatalogSerializer.dump(configured_catalog)
        lines = (orjson.dumps(AirbyteMessageSerializer.dump(m)) for m in input_messages)
        batches = ([line] for line in lines)
        for output in write_lines(_validated(config), catalog, batches):
            yield AirbyteMessageSerializer.load(orjson.loads(output))

    def run(self, args: list[str]) -> None:
        """Like the CDK's run, but `write` reads stdin as raw bytes and prints raw lines: no
        message object is built per record. Every failure ends as one TRACE message, exit 1."""
        init_uncaught_exception_handler(logger)
        parsed = self.parse_args(args)
        if parsed.command != "write":
            self._answer(parsed)
            return
        # An orchestrator cancels a job with SIGTERM: unwind like any failure, so open uploads
        # are aborted and the cancellation is reported, instead of dying mid-request.
        signal.signal(signal.SIGTERM, _raise_cancelled)
        failure: AirbyteTracedException | None = None
        # PRINT_BUFFER keeps LOG lines and our own lines in one ordered, flushed stream.
        with PRINT_BUFFER:
            try:
                self._write_stdin(parsed.config, parsed.catalog, sys.stdin.buffer)
                # Everything is written: a late SIGTERM must not turn success into a failure.
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
            except AirbyteTracedException as traced:
                failure = traced
            except Cancelled as cancelled:
                failure = AirbyteTracedException(
                    message=f"The sync was {cancelled}.",
                    internal_message=str(cancelled),
                    failure_type=FailureType.system_error,
                )
            except Exception as exc:
                failure = AirbyteTracedException.from_exception(exc)
            if failure is not None:
                logger.error(failure.internal_message or failure.message or "sync failed")
                failure.emit_message()
        if failure is not None:
            # Upload threads may still be inside retries against an unreachable S3; exiting the
            # interpreter normally would wait for them. Everything to say has been said.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(1)

    def _answer(self, parsed: argparse.Namespace) -> None:
        """spec and check: print the answer; a SIGTERM after it is out ends the process with 0
        (PyAirbyte terminates `check` once it has read the status), before it with -15."""
        answered = False

        def terminate(signum: int, frame: object) -> None:
            if answered:
                os._exit(0)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

        signal.signal(signal.SIGTERM, terminate)
        if parsed.command == "check":
            status = self.check(logger, self.read_config(parsed.config))
            messages: Iterable[AirbyteMessage] = [
                AirbyteMessage(type=Type.CONNECTION_STATUS, connectionStatus=status)
            ]
        else:
            messages = self.run_cmd(parsed)
        for message in messages:
            sys.stdout.write(orjson.dumps(AirbyteMessageSerializer.dump(message)).decode() + "\n")
            sys.stdout.flush()
        answered = True

    def _write_stdin(self, config_path: str, catalog_path: str, stdin: BinaryIO) -> None:
        config = _validated(self.read_config(config_path))
        catalog = _read_catalog(catalog_path)
        tuning = Tuning.from_environment()
        for output in write_lines(config, catalog, LineBatches(stdin, tuning.tick_seconds), tuning):
            print(output.decode(), flush=True)


# A secret this short would mask every occurrence of its letters in every later message; the
# connector never prints a config value, so masking is only a second line of defence.
_SHORTEST_MASKED_SECRET = 4


def _validated(raw: Mapping[str, Any]) -> ConnectorConfig:
    """The typed config, or a config_error TRACE naming every field that is wrong (no value of a
    secret field is ever quoted). Secrets are registered for masking only after validation, so a
    secret that equals a word cannot garble the sentence that explains the error."""
    try:
        validated = validate_config(raw)
    except ConfigError as error:
        raise AirbyteTracedException(
            message=error.message,
            internal_message=error.message,
            failure_type=FailureType.config_error,
        ) from None
    update_secrets([s for s in secret_values(raw) if len(s) >= _SHORTEST_MASKED_SECRET])
    for warning in validated.warnings:
        logger.warning(warning)
    return validated.config


def _raise_cancelled(signum: int, frame: object) -> None:
    # Once: a second SIGTERM must not interrupt the abort of open uploads that the first started.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Cancelled(f"cancelled by signal {signal.Signals(signum).name}")


def _read_catalog(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as file:
            catalog = orjson.loads(file.read())
        ConfiguredAirbyteCatalogSerializer.load(catalog)
    except Exception as exc:
        raise AirbyteTracedException(
            message=f"The configured catalog {path} is not valid: {exc}",
            failure_type=FailureType.system_error,
            exception=exc,
        ) from exc
    return dict(catalog)


def write_lines(
    config: ConnectorConfig,
    catalog: Mapping[str, Any],
    batches: Iterable[list[bytes]],
    tuning: Tuning | None = None,
) -> Iterator[bytes]:
    """Run a sync and yield the output lines; failures become AirbyteTracedExceptions."""
    logger.info("Starting sync: %s", config.summary())
    bucket_name = config.location.bucket
    tuning = tuning or Tuning()
    try:
        bucket = open_bucket(config.location, config.credentials, tuning.retry_policy)
        sync = Sync(config, catalog, bucket, tuning)
        yield from sync.run(batches)
    except StorageError as error:
        raise error.failure.traced(bucket_name, error) from error
    except (InputError, CatalogError) as error:
        raise error.traced() from error


__all__ = ["DestinationS3", "write_lines"]
