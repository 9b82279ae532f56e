"""destinationStats.recordCount as the platform compares it with the source's counts, and
overwrite markers of a stream whose name is another stream's namespace."""

from __future__ import annotations

from integration_tests.connector import (
    MakeConfig,
    configured_catalog,
    record,
    run_write,
    stream_state,
)
from integration_tests.s3_server import MotoServer


def test_stream_states_count_only_their_own_stream(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    lines = [
        record("a", {"id": 1}),
        record("b", {"id": 1}),
        record("b", {"id": 2}),
        stream_state("a", {"cursor": 1}),
        stream_state("b", {"cursor": 2}),
        record("a", {"id": 2}),
        stream_state("a", {"cursor": 2}),
        stream_state("b", {"cursor": 2}),
    ]
    run = run_write(make_config(bucket), configured_catalog(["a", "b"]), lines).assert_success()
    counts = [
        (
            state["state"]["stream"]["stream_descriptor"]["name"],
            state["state"]["destinationStats"]["recordCount"],
        )
        for state in run.of_type("STATE")
    ]
    assert counts == [("a", 1), ("b", 2), ("a", 1), ("b", 0)]


def test_overwrite_of_a_stream_named_like_a_namespace_keeps_the_namespaced_streams_files(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    config = make_config(bucket)

    def catalog(generation: int) -> dict[str, object]:
        return configured_catalog(
            [{"name": "public"}, {"name": "5", "namespace": "public"}],
            destination_sync_mode="overwrite",
            generation_id=generation,
            minimum_generation_id=generation,
        )

    # Generation 10, attempt 1 writes both streams; attempt 2 only sends more `public` records
    # (the namespaced stream's records were acknowledged by attempt 1 and are not resent).
    first = [record("public", {"id": 1}), record("5", {"id": 1}, namespace="public")]
    run_write(config, catalog(10), first).assert_success()
    run_write(config, catalog(10), [record("public", {"id": 2})]).assert_success()

    namespaced = s3.list_keys(bucket, "public/5/")
    assert len(namespaced) == 1, namespaced
    assert [line["data"]["id"] for line in s3.read_jsonl(bucket, namespaced[0])] == [1]
    assert s3.list_keys(bucket, "_tarsal_generations/public/5/10/")
