"""DestinationS3: the Airbyte CDK connector class (spec, check, write)."""

from __future__ import annotations

import logging
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
)
from airbyte_cdk.sources.utils.schema_helpers import check_config_against_spec_or_exit
from airbyte_cdk.utils.airbyte_secrets_utils import filter_secrets, get_secrets, update_secrets
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from destination_s3.check import run_check
from destination_s3.config import ConnectorConfig, parse_config
from destination_s3.errors import InputError
from destination_s3.reader import LineBatches
from destination_s3.storage import Bucket, StorageError, build_s3_client
from destination_s3.sync import Sync, Tuning

logger = logging.getLogger("airbyte")


class DestinationS3(Destination):
    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        succeeded, message = run_check(parse_config(config))
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
        for output in write_lines(parse_config(config), catalog, batches):
            yield AirbyteMessageSerializer.load(orjson.loads(output))

    def run(self, args: list[str]) -> None:
        """Like the CDK's run, but `write` reads stdin as raw bytes and prints raw lines: no
        message object is built per record. Every failure ends as one TRACE message, exit 1."""
        init_uncaught_exception_handler(logger)
        # An orchestrator cancels a job with SIGTERM: unwind like any failure, so open uploads
        # are aborted and the cancellation is reported, instead of dying mid-request.
        signal.signal(signal.SIGTERM, _raise_cancelled)
        failure: AirbyteTracedException | None = None
        # PRINT_BUFFER keeps LOG lines and our own lines in one ordered, flushed stream.
        with PRINT_BUFFER:
            try:
                parsed = self.parse_args(args)
                if parsed.command == "write":
                    self._write_stdin(parsed.config, parsed.catalog, sys.stdin.buffer)
                else:
                    for message in self.run_cmd(parsed):
                        print(orjson.dumps(AirbyteMessageSerializer.dump(message)).decode())
            except AirbyteTracedException as traced:
                failure = traced
            except Cancelled as cancelled:
                failure = AirbyteTracedException(
                    message=f"The sync was {cancelled}; open uploads were aborted.",
                    internal_message=str(cancelled),
                    failure_type=FailureType.system_error,
                )
            except Exception as exc:
                failure = AirbyteTracedException.from_exception(exc)
            if failure is not None:
                logger.error(failure.internal_message or failure.message or "sync failed")
                failure.emit_message()
        if failure is not None:
            sys.exit(1)

    def _write_stdin(self, config_path: str, catalog_path: str, stdin: BinaryIO) -> None:
        raw_config = self.read_config(config_path)
        spec = self.spec(logger)
        update_secrets(get_secrets(spec.connectionSpecification, raw_config))
        check_config_against_spec_or_exit(raw_config, spec)
        config = parse_config(raw_config)
        catalog = _read_catalog(catalog_path)
        tuning = Tuning.from_environment()
        for output in write_lines(config, catalog, LineBatches(stdin, tuning.tick_seconds), tuning):
            print(output.decode(), flush=True)


class Cancelled(Exception):
    pass


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
    try:
        client = build_s3_client(config.location, config.credentials)
        sync = Sync(config, catalog, Bucket(client, bucket_name), tuning)
        yield from sync.run(batches)
    except StorageError as error:
        raise error.failure.traced(bucket_name, error) from error
    except InputError as error:
        raise error.traced() from error


__all__ = ["DestinationS3", "write_lines"]
