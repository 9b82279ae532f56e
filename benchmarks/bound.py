"""The upper bound: the S3 client alone uploading the bytes a run produced, as the connector would.

The client is made as the connector makes its own (destination_s3.s3_client: bodies sent whole
as bytes with their CRC32), so the bound gains whatever the connector's requests gain.

The objects of a finished run (saved to disk while they were counted) are read into memory
first, so neither disk nor generation is timed. Then, against an empty bucket on the same moto
server, every object is uploaded again under its own key: objects larger than a part as multipart
uploads in parts of the connector's part size, smaller ones with one PutObject, all parts of all
objects on one pool of as many threads as the connector's upload workers.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from destination_s3.config import AccessKeyCredentials, S3Location
from destination_s3.s3_client import RetryPolicy, client_session, crc32_checksum, s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from integration_tests.s3_server import MotoServer


@dataclass(frozen=True)
class BoundMeasure:
    objects: int
    parts: int
    bytes: int
    wall_seconds: float
    # Of wall_seconds, waiting for CompleteMultipartUpload answers (moto joins the parts then,
    # in proportion to the object's size).
    complete_seconds: float = 0.0


@dataclass
class _Upload:
    key: str
    upload_id: str | None  # None: a single PutObject
    parts: list[Future[str]]


def _start_upload(
    client: S3Client, bucket: str, key: str, body: bytes, part_size: int, pool: ThreadPoolExecutor
) -> _Upload:
    """Queue one object's requests on `pool`."""
    if len(body) <= part_size:

        def put() -> str:
            answer = client.put_object(
                Bucket=bucket, Key=key, Body=body, ChecksumCRC32=crc32_checksum(body)
            )
            return str(answer["ETag"])

        return _Upload(key, None, [pool.submit(put)])
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    view = memoryview(body)

    def part(number: int, start: int) -> str:
        chunk = view[start : start + part_size].tobytes()
        answer = client.upload_part(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=chunk,
            ChecksumCRC32=crc32_checksum(chunk),
        )
        return str(answer["ETag"])

    # The last part may be small; S3 only requires the others to be at least 5 MiB.
    offsets = range(0, len(body), part_size)
    return _Upload(
        key,
        upload_id,
        [pool.submit(part, number, start) for number, start in enumerate(offsets, start=1)],
    )


def connector_client(server: MotoServer, bucket: str, workers: int) -> S3Client:
    """An S3 client of `server`'s admin user, made as the connector makes its own."""
    admin = server.ensure_admin()
    session = client_session(
        AccessKeyCredentials(admin.access_key_id, admin.secret_access_key), None
    )
    if server.ca_bundle:  # --tls: the connector trusts it through AWS_CA_BUNDLE
        session.set_config_variable("ca_bundle", server.ca_bundle)
    client: S3Client = s3_client(
        session,
        S3Location(bucket=bucket, region="us-east-1", path="", endpoint=server.endpoint),
        RetryPolicy(),
        max_pool_connections=max(16, workers * 2),
    )
    return client


def complete_upload(
    client: S3Client, bucket: str, key: str, upload_id: str, etags: list[str]
) -> None:
    """CompleteMultipartUpload of the parts whose ETags are `etags`, numbered from 1."""
    client.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]},
    )


def measure_upload_bound(
    server: MotoServer,
    bucket: str,
    objects: list[tuple[str, Path]],
    part_size: int,
    workers: int,
) -> BoundMeasure:
    """Upload `objects` ((key, saved file) pairs) to the empty `bucket`; time only the upload."""
    bodies = [(key, path.read_bytes()) for key, path in objects]
    client = connector_client(server, bucket, workers)
    started = time.perf_counter()
    parts = 0
    completing = 0.0
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bound") as pool:
        uploads = [
            _start_upload(client, bucket, key, body, part_size, pool) for key, body in bodies
        ]
        # Objects complete in order, each as soon as its own parts are in.
        for upload in uploads:
            etags = [part.result() for part in upload.parts]
            parts += len(etags)
            if upload.upload_id is not None:
                complete_started = time.perf_counter()
                complete_upload(client, bucket, upload.key, upload.upload_id, etags)
                completing += time.perf_counter() - complete_started
    wall = time.perf_counter() - started
    return BoundMeasure(
        objects=len(bodies),
        parts=parts,
        bytes=sum(len(body) for _key, body in bodies),
        wall_seconds=wall,
        complete_seconds=completing,
    )
