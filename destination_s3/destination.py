"""DestinationS3: the Airbyte CDK connector class, for `check` and the CDK's in-process `write`.

The `write` command runs without the CDK (destination_s3.cli); both writes share
destination_s3.operations, whose failures are turned into AirbyteTracedExceptions here.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from airbyte_cdk.destinations import Destination
from airbyte_cdk.exception_handler import init_uncaught_exception_handler
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

from destination_s3.catalog import catalog_of
from destination_s3.check import run_check
from destination_s3.config import ConnectorConfig
from destination_s3.errors import CatalogError, Failed, Failure
from destination_s3.operations import validated_config, write_lines
from destination_s3.protocol import registered_secrets

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
        validated = _validated(config)
        try:
            catalog = catalog_of(ConfiguredAirbyteCatalogSerializer.dump(configured_catalog))
            # One block of one whole line per message (reader.LineBlocks' shape).
            dump = AirbyteMessageSerializer.dump
            blocks = (orjson.dumps(dump(message)) + b"\n" for message in input_messages)
            for output in write_lines(validated, catalog, blocks):
                yield AirbyteMessageSerializer.load(orjson.loads(output))
        except Failed as failed:
            raise traced_exception(failed.failure) from failed.failure.exception
        except CatalogError as error:  # catalog_of: the catalog object cannot be written
            raise traced_exception(error.traced()) from error

    def run(self, args: list[str]) -> None:
        """`write` is destination_s3.cli's (it exits the process); spec and check the CDK's."""
        if args[:1] == ["write"]:
            from destination_s3.cli import main

            main(args)
        init_uncaught_exception_handler(logger)
        self._answer(self.parse_args(args))

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


def _validated(raw: Mapping[str, Any]) -> ConnectorConfig:
    """validated_config, with the config's secrets registered with the CDK's filter too (it masks
    the CDK's LOG lines and the check's message)."""
    try:
        config = validated_config(raw)
    except Failed as failed:
        raise traced_exception(failed.failure) from None
    update_secrets(registered_secrets())
    return config


def traced_exception(failure: Failure) -> AirbyteTracedException:
    """The CDK's exception for a failure: it prints the TRACE message the `write` command does."""
    return AirbyteTracedException(
        message=failure.message,
        internal_message=failure.internal_message,
        failure_type=FailureType(failure.failure_type.value),
        exception=failure.exception,
    )


__all__ = ["DestinationS3", "traced_exception", "write_lines"]
