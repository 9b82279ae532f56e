"""What the local S3 server itself costs per request: the figures behind the benchmark's ratios.

`python -m benchmarks.server_costs` starts a moto server as the benchmark does and, with a client
made as the connector makes its own, times: small PutObjects (one thread, then four), whether the
server keeps a connection for the next request, and a multipart upload of 14 parts of 5 MiB with
its CompleteMultipartUpload timed on its own (moto copies every part into the object then).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from benchmarks.bound import complete_upload, connector_client
from destination_s3.config import MIB
from destination_s3.s3_client import crc32_checksum
from integration_tests.s3_server import MotoServer

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BUCKET = "destination-s3-server-costs"


@dataclass(frozen=True)
class ServerCosts:
    small_puts_per_second_1_thread: float
    small_puts_per_second_4_threads: float
    keeps_connections: bool
    part_seconds: float  # median UploadPart of 5 MiB
    complete_seconds: float  # CompleteMultipartUpload of `parts` parts of 5 MiB
    parts: int

    def lines(self) -> list[str]:
        mb = self.parts * 5 * MIB / 1e6
        return [
            f"- small PutObject: {self.small_puts_per_second_1_thread:.0f}/s on one thread, "
            f"{self.small_puts_per_second_4_threads:.0f}/s on four",
            "- a connection is kept for the next request: "
            + ("yes" if self.keeps_connections else "no (the server answers Connection: close)"),
            f"- UploadPart of 5 MiB: {self.part_seconds * 1000:.0f} ms (median)",
            f"- CompleteMultipartUpload of {self.parts} parts ({mb:.0f} MB): "
            f"{self.complete_seconds:.2f} s",
        ]


def _small_puts_per_second(client: S3Client, threads: int, count: int) -> float:
    empty = crc32_checksum(b"")

    def put(index: int) -> None:
        key = f"small/{threads}/{index}"
        client.put_object(Bucket=BUCKET, Key=key, Body=b"", ChecksumCRC32=empty)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(put, range(count)))
    return count / (time.perf_counter() - started)


def _keeps_connections(client: S3Client) -> bool:
    """Whether the server lets the next request use the same connection."""
    answer = client.head_bucket(Bucket=BUCKET)
    return answer["ResponseMetadata"]["HTTPHeaders"].get("connection", "").lower() != "close"


def _multipart(client: S3Client, parts: int) -> tuple[float, float]:
    body = os.urandom(5 * MIB)
    checksum = crc32_checksum(body)
    upload_id = client.create_multipart_upload(Bucket=BUCKET, Key="multipart")["UploadId"]
    etags, times = [], []
    for number in range(1, parts + 1):
        started = time.perf_counter()
        answer = client.upload_part(
            Bucket=BUCKET,
            Key="multipart",
            UploadId=upload_id,
            PartNumber=number,
            Body=body,
            ChecksumCRC32=checksum,
        )
        times.append(time.perf_counter() - started)
        etags.append(answer["ETag"])
    started = time.perf_counter()
    complete_upload(client, BUCKET, "multipart", upload_id, etags)
    return statistics.median(times), time.perf_counter() - started


def measure(server: MotoServer, small_puts: int = 300, parts: int = 14) -> ServerCosts:
    server.reset_bucket(BUCKET)
    client = connector_client(server, BUCKET, workers=4)
    one = _small_puts_per_second(client, 1, small_puts)
    four = _small_puts_per_second(client, 4, small_puts)
    keeps = _keeps_connections(client)
    part, complete = _multipart(client, parts)
    return ServerCosts(one, four, keeps, part, complete, parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small-puts", type=int, default=300)
    parser.add_argument("--parts", type=int, default=14)
    parser.add_argument("--tls", action="store_true", help="serve S3 over https")
    args = parser.parse_args()
    with MotoServer.start(tls=args.tls) as server:
        costs = measure(server, args.small_puts, args.parts)
    print(f"moto server on loopback ({'https' if args.tls else 'http'}), {time.ctime()}:")
    print("\n".join(costs.lines()))


if __name__ == "__main__":
    main()
