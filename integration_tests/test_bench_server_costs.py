"""The benchmark's measure of the S3 server itself, against the real local server."""

from __future__ import annotations

from benchmarks.server_costs import BUCKET, measure
from integration_tests.s3_server import MotoServer


def test_the_server_costs_are_measured_with_real_requests(s3: MotoServer) -> None:
    costs = measure(s3, small_puts=6, parts=2)
    assert costs.small_puts_per_second_1_thread > 0 and costs.small_puts_per_second_4_threads > 0
    # moto's werkzeug server closes every connection after its answer.
    assert costs.keeps_connections is False
    assert costs.part_seconds > 0 and costs.complete_seconds > 0 and costs.parts == 2
    keys = s3.list_keys(BUCKET)
    assert "multipart" in keys and sum(key.startswith("small/") for key in keys) == 12
    sizes = {str(o["Key"]): int(o["Size"]) for o in s3.list_objects(BUCKET)}
    assert sizes["multipart"] == 2 * 5 * 1024 * 1024
    lines = costs.lines()
    assert lines[1].endswith("no (the server answers Connection: close)")
    assert lines[3].startswith("- CompleteMultipartUpload of 2 parts (10 MB): ")
