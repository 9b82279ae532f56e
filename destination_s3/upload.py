"""One object's upload: parts while it grows, then complete; or abort.

The four multipart calls are made with boto3 directly rather than through smart_open's
MultipartWriter: it copies every part into a buffer of its own (more CPU per MiB), and wraps the
calls in a module-level retry loop of its own on top of botocore's, which hid S3's error codes and
stretched a failure to minutes. Here botocore's retry policy is the only one (see s3_client.py).

Every completion is conditional (If-None-Match: *), so an existing object is never replaced. When
S3 executed a call whose answer was lost and botocore retried it, the retry can fail although the
object is ours and complete; the key is then checked (ListBucket) for exactly our size and ETag.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from destination_s3.storage import LIFECYCLE_ADVICE, Bucket, StorageError

logger = logging.getLogger("airbyte")


class UploadAborted(Exception):
    """A step of an upload that was aborted (the sync is failing or cancelled) did not run."""


def multipart_etag(part_etags: list[str]) -> str:
    """The ETag S3 gives a multipart object: MD5 of the parts' binary MD5s, then the count."""
    digests = b"".join(bytes.fromhex(etag) for etag in part_etags)
    return f"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{len(part_etags)}"


class ObjectUpload:
    """An object smaller than a part is sent with one PutObject when completed (one request
    instead of three). Not thread-safe for writing: one object's parts go one after another;
    `abort` may come from another thread while a part is being sent."""

    def __init__(
        self, bucket: Bucket, key: str, content_type: str, metadata: dict[str, str]
    ) -> None:
        self.bucket = bucket
        self.key = key
        self.content_type = content_type
        self.metadata = metadata
        self.bytes_written = 0
        self.finished = False
        self.upload_id: str | None = None
        self._part_etags: list[str] = []
        # Set while a CreateMultipartUpload is under way, and after one that failed in a way
        # that may have opened an upload anyway.
        self._creating = threading.Event()
        self._create_ended = threading.Event()
        # Its answer said botocore retried it: an earlier attempt may have opened an upload too.
        self._create_retried = False
        # An abort and the start of a create exclude each other: a create never starts after
        # an abort, and an abort always sees a create that started.
        self._create_or_abort = threading.Lock()

    def write(self, part: bytes) -> None:
        """Send one part (every part but the last is at least S3's 5 MiB minimum)."""
        if self.upload_id is None:
            self._create()
        upload_id = self.upload_id
        assert upload_id is not None
        number = len(self._part_etags) + 1
        answer = self.bucket.call(
            f"s3:PutObject (part {number}) on {self.bucket.url(self.key)}",
            lambda: self.bucket.client.upload_part(
                Bucket=self.bucket.name,
                Key=self.key,
                UploadId=upload_id,
                PartNumber=number,
                Body=part,
                **self.bucket.checksum_args(part),
            ),
        )
        self._part_etags.append(answer["ETag"].strip('"'))
        self.bytes_written += len(part)

    def complete(self, tail: bytes) -> str:
        """Write the last bytes and make the object visible; returns the ETag S3 gave it.
        Raises StorageError on failure."""
        if self.upload_id is None:
            etag = self.bucket.put_object(
                self.key, tail, self.content_type, self.metadata, if_absent=True
            )
            self.bytes_written += len(tail)
        else:
            if tail:
                self.write(tail)
            etag = self._complete_multipart(self.upload_id)
        self.finished = True
        return etag

    def close_if_never_opened(self) -> bool:
        """Mark an upload that holds nothing open on S3 (no CreateMultipartUpload started, or
        one S3 refused at once) finished, so that none starts later; True if it was such an
        upload or already finished."""
        with self._create_or_abort:
            if not self.finished and (self.upload_id is not None or self._creating.is_set()):
                return False
            self.finished = True
            return True

    def abort(self) -> bool:
        """Drop the upload so no part is left behind; True when nothing is left open.

        Best-effort with the quick client: it runs while a sync is failing or cancelled. A
        CreateMultipartUpload on its way is waited for, then every upload it may have opened is
        aborted (all of the key's when the create was retried or its answer lost): the caller
        (abort_uploads) bounds the wait and reports an upload it gave up on."""
        with self._create_or_abort:
            if self.finished:
                return True
            self.finished = True
            creating = self._creating.is_set()
        if self.upload_id is None and creating:
            self._create_ended.wait()
        if self.upload_id is None:
            if not self._creating.is_set():
                return True  # no create, or one S3 refused at once: nothing was opened
            # A create whose answer was lost may have opened an upload we never heard of.
            return self.bucket.abort_other_uploads(self.key, keep=None, quick=True)
        if self._create_retried:
            # The uploads of its earlier attempts may not be cleaned up yet (the create's own
            # thread is at it): abort every upload of the key, ours among them.
            return self.bucket.abort_other_uploads(self.key, keep=None, quick=True)
        try:
            self.bucket.abort_upload(self.key, self.upload_id, quick=True)
        except StorageError as error:
            logger.warning("could not abort the upload of %s: %s", self.bucket.url(self.key), error)
            return False
        return True

    def _create(self) -> None:
        with self._create_or_abort:
            if self.finished:
                # Aborted before this part's task reached S3: an upload opened now would stay.
                raise UploadAborted(f"the upload of {self.bucket.url(self.key)} was aborted")
            self._create_ended.clear()
            self._creating.set()
        try:
            answer = self.bucket.call(
                f"s3:PutObject (CreateMultipartUpload) on {self.bucket.url(self.key)}",
                lambda: self.bucket.client.create_multipart_upload(
                    Bucket=self.bucket.name,
                    Key=self.key,
                    ContentType=self.content_type,
                    Metadata=self.metadata,
                    **self.bucket.encryption.request_args(),
                ),
            )
            self._create_retried = bool(answer.get("ResponseMetadata", {}).get("RetryAttempts"))
            self.upload_id = answer["UploadId"]
            self._creating.clear()
        except StorageError as error:
            if error.failure.answered_at_once:
                self._creating.clear()  # S3 refused the only attempt: nothing was opened
            # Otherwise _creating stays set: an attempt whose answer was lost may have opened one.
            raise
        finally:
            self._create_ended.set()
        if self._create_retried:
            self.bucket.abort_other_uploads(self.key, keep=self.upload_id)

    def _complete_multipart(self, upload_id: str) -> str:
        parts = [
            {"PartNumber": number, "ETag": f'"{etag}"'}
            for number, etag in enumerate(self._part_etags, start=1)
        ]
        try:
            answer = self.bucket.call(
                f"s3:PutObject (CompleteMultipartUpload) on {self.bucket.url(self.key)}",
                lambda: self.bucket.client.complete_multipart_upload(
                    Bucket=self.bucket.name,
                    Key=self.key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
                    IfNoneMatch="*",
                ),
            )
        except StorageError as error:
            # A retried Complete whose first attempt went through: S3 answers NoSuchUpload (the
            # upload is gone) or PreconditionFailed (the object now exists).
            if error.failure.code not in ("NoSuchUpload", "PreconditionFailed"):
                raise
            stored = self.bucket.holds(
                self.key, self.bytes_written, multipart_etag(self._part_etags)
            )
            if stored is None:
                raise
            logger.info(
                "CompleteMultipartUpload of %s was retried after S3 completed it: kept",
                self.bucket.url(self.key),
            )
            return stored.etag
        return str(answer.get("ETag", "")).strip('"')


@dataclass(frozen=True)
class AbortOutcome:
    aborted: int
    left_open: list[str]  # s3:// URLs of uploads that may still be open

    def describe(self) -> str:
        if not self.left_open:
            return f"{self.aborted} open uploads were aborted"
        shown = ", ".join(self.left_open[:5]) + (", …" if len(self.left_open) > 5 else "")
        return (
            f"{self.aborted} open uploads were aborted; {len(self.left_open)} could not be "
            f"aborted in time and may stay open ({shown}). To clean up: {LIFECYCLE_ADVICE}"
        )


def abort_uploads(uploads: Sequence[ObjectUpload], seconds: float) -> AbortOutcome:
    """Abort uploads side by side, giving up on whatever is not done within `seconds`.

    Daemon threads: an abort stuck on an unreachable endpoint must not keep the process alive.
    """
    open_uploads = [upload for upload in uploads if not upload.close_if_never_opened()]
    done: list[ObjectUpload] = []
    lock = threading.Lock()

    def run(upload: ObjectUpload) -> None:
        if upload.abort():
            with lock:
                done.append(upload)

    threads = [
        threading.Thread(target=run, args=(upload,), name="s3-abort", daemon=True)
        for upload in open_uploads
    ]
    for thread in threads:
        thread.start()
    end = time.monotonic() + seconds
    for thread in threads:
        thread.join(max(0.0, end - time.monotonic()))
    with lock:
        aborted = {id(upload) for upload in done}
    left_open = [
        upload.bucket.url(upload.key) for upload in open_uploads if id(upload) not in aborted
    ]
    return AbortOutcome(len(aborted), left_open)
