"""The CDK's in-process interface (DestinationS3.write with message objects), for callers that
embed the connector instead of running it as a process."""

from __future__ import annotations

from airbyte_cdk.models import (
    AirbyteMessageSerializer,
    ConfiguredAirbyteCatalogSerializer,
    Type,
)

from destination_s3.destination import DestinationS3
from integration_tests.connector import MakeConfig, configured_catalog, record, stream_state
from integration_tests.s3_server import MotoServer


def test_write_with_message_objects_lands_records_and_returns_the_state(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    config = make_config(bucket)
    catalog = ConfiguredAirbyteCatalogSerializer.load(configured_catalog(["users"]))
    messages = [
        AirbyteMessageSerializer.load(message)
        for message in (
            record("users", {"id": 1}),
            record("users", {"id": 2}),
            stream_state("users", {"cursor": 2}),
        )
    ]

    output = list(DestinationS3().write(config, catalog, messages))

    assert [message.type for message in output] == [Type.STATE]
    state = output[0].state
    assert state is not None and state.destinationStats is not None
    assert state.destinationStats.recordCount == 2
    keys = s3.list_keys(bucket, "users/")
    assert [line["data"]["id"] for key in keys for line in s3.read_jsonl(bucket, key)] == [1, 2]
