"""LOG messages: a config summary when the sync starts, and per stream at the end the records,
files, bytes and keys written."""

from __future__ import annotations

import re

from integration_tests.connector import (
    MakeConfig,
    configured_catalog,
    run_write,
    start_write,
    stream_state,
)
from integration_tests.readback import numbered_records
from integration_tests.s3_server import MotoServer


def mentions(message: str, number: int, word: str) -> bool:
    """``"12 records"``, ``"records=12"`` or ``"records: 12"``."""
    return bool(
        re.search(rf"\b{number} {word}\b", message)
        or re.search(rf"\b{word}\s*[=:]\s*{number}\b", message)
    )


def test_logs_show_a_config_summary_first_and_per_stream_totals_at_the_end(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    config = make_config(bucket, "logs", file_size_mb=1, stream_prefix="p_")
    users = numbered_records("users", 1200, pad=1000)  # two files
    orders = numbered_records("orders", 3)
    lines = [*orders, *users, stream_state("users", {"cursor": 1})]
    catalog = configured_catalog(["users", "orders", "never_sent"])
    run = run_write(config, catalog, lines).assert_success()

    log_messages = [str(entry.get("message", "")) for entry in run.logs()]
    summary = log_messages[0]
    for fragment in (bucket, "logs", "us-east-1", "p_"):
        assert fragment in summary, f"{fragment!r} not in the config summary {summary!r}"
    assert "jsonl" in summary.lower()

    last_state = max(i for i, m in enumerate(run.messages) if m.get("type") == "STATE")
    final_logs = [
        str(m["log"]["message"]) for m in run.messages[last_state + 1 :] if m.get("type") == "LOG"
    ]
    for stream, count in (("users", 1200), ("orders", 3)):
        objects = s3.list_objects(bucket, f"logs/p_{stream}/")
        keys = [str(o["Key"]) for o in objects]
        size = sum(int(o["Size"]) for o in objects)
        lines_for_stream = [
            message
            for message in final_logs
            if stream in message
            and mentions(message, count, "records")
            and mentions(message, len(keys), "files")
            and mentions(message, size, "bytes")
        ]
        assert lines_for_stream, (
            f"no end-of-sync LOG for {stream}: {count} records, {len(keys)} files, {size} bytes;"
            f" final LOG lines: {final_logs}"
        )
        for key in keys:
            assert key in lines_for_stream[-1], f"{key} not listed in {lines_for_stream[-1]!r}"
    assert users and len(s3.list_keys(bucket, "logs/p_users/")) == 2
    timing = re.fullmatch(
        r"Sync finished in (\d+\.\d) s: input read in (\d+\.\d) s, then (\d+\.\d) s "
        r"completing the last objects, removing earlier ones and writing the manifest",
        final_logs[-1],
    )
    assert timing, f"the last LOG does not say where the time went: {final_logs[-1]!r}"
    # The three figures come from two instants (the end of input, the end): each rounded once.
    total, reading, finishing = (float(value) for value in timing.groups())
    assert abs(total - (reading + finishing)) <= 0.1 + 1e-9


def test_progress_is_logged_periodically_while_the_sync_runs(
    s3: MotoServer, bucket: str, make_config: MakeConfig
) -> None:
    config = make_config(bucket)
    env = {"DESTINATION_S3_PROGRESS_SECONDS": "0.5", "DESTINATION_S3_TICK_SECONDS": "0.1"}
    with start_write(config, configured_catalog(["users"]), env=env) as sync:
        sync.send_many(numbered_records("users", 7))
        progress = sync.wait_for(
            lambda m: m.get("type") == "LOG" and "Progress:" in str(m["log"].get("message")),
            timeout=30,
        )
        message = str(progress["log"]["message"])
        assert mentions(message, 7, "records received"), message
        assert "records/s" in message
        sync.finish().assert_success()
