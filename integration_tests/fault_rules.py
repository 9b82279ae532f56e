"""What the fault proxy decides: how a request is named (S3 operation), the rules that pick a
fault for it, and the counts of what was injected. No sockets here: see fault_proxy.py."""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal, NamedTuple, get_args
from urllib.parse import parse_qs, urlsplit

FaultKind = Literal[
    "error_before",  # S3 error answered without forwarding (status/code of the rule)
    "error_early",  # S3 error answered before the body is read, then the connection closed
    "error_after",  # forwarded (S3 executed it), then answered with the rule's error
    "reset_before",  # RST before forwarding
    "reset_mid_request",  # RST after part of the body (never forwarded)
    "reset_after",  # forwarded, then RST instead of the answer
    "ok_with_error_body",  # forwarded, then 200 OK with an <Error> body
    "delay",  # sleep delay_s, then forward normally
]
FAULT_KINDS: frozenset[str] = frozenset(get_args(FaultKind))

_MULTIPART = {"PUT": "UploadPart", "POST": "CompleteMultipartUpload", "GET": "ListParts"}
_SUBRESOURCE = {
    ("POST", "uploads"): "CreateMultipartUpload",
    ("POST", "delete"): "DeleteObjects",
    ("GET", "uploads"): "ListMultipartUploads",
    ("GET", "location"): "GetBucketLocation",
    ("GET", "list-type"): "ListObjectsV2",
}
_PLAIN = {  # (method, has a key) -> operation, for requests without subresource
    ("PUT", True): "PutObject",
    ("GET", True): "GetObject",
    ("HEAD", True): "HeadObject",
    ("DELETE", True): "DeleteObject",
    ("PUT", False): "CreateBucket",
    ("GET", False): "ListObjects",
    ("HEAD", False): "HeadBucket",
    ("DELETE", False): "DeleteBucket",
}
_PLAIN_PARAMS = frozenset(  # query parameters that are arguments, not subresources
    "prefix marker delimiter max-keys encoding-type continuation-token start-after "  # noqa: SIM905
    "fetch-owner versionId partNumber x-id response-content-type".split()
)
OPERATIONS = frozenset(
    {*_MULTIPART.values(), *_SUBRESOURCE.values(), *_PLAIN.values()}
    | {"AbortMultipartUpload", "CopyObject", "ListBuckets", "MotoApi", "Other"}
)
"""Every name :func:`classify` returns; rules naming anything else are rejected (typos)."""


class S3Request(NamedTuple):
    """What the rules see of a request."""

    method: str
    path: str
    operation: str
    conditional: bool  # a PUT/POST carrying If-None-Match (create-only PutObject or Complete)


def classify(method: str, target: str, header_names: Collection[str] = ()) -> S3Request:
    """Name the S3 operation of ``METHOD /bucket/key?query`` (path-style addressing)."""
    split = urlsplit(target)
    query = parse_qs(split.query, keep_blank_values=True)
    names = {name.lower() for name in header_names}
    method = method.upper()
    bucket, _, key = split.path.lstrip("/").partition("/")
    subresources = sorted(set(query) - _PLAIN_PARAMS)
    if split.path.startswith("/moto-api/"):
        operation = "MotoApi"
    elif not bucket:
        operation = "ListBuckets" if method == "GET" else "Other"  # POST / is IAM or STS
    elif "uploadId" in query:
        operation = "AbortMultipartUpload" if method == "DELETE" else _MULTIPART.get(method, "")
    elif subresources:
        operation = (
            _SUBRESOURCE.get((method, subresources[0]), "") if len(subresources) == 1 else ""
        )
    elif method == "PUT" and key and "x-amz-copy-source" in names:
        operation = "CopyObject"
    else:
        operation = _PLAIN.get((method, bool(key)), "")
    conditional = method in ("PUT", "POST") and "if-none-match" in names
    return S3Request(method, split.path, operation or "Other", conditional)


@dataclass(eq=False)
class FaultRule:
    """Which requests get which fault.

    A request matches when its operation is in ``operations`` (None: any S3 operation) and, if
    ``conditional`` is set, its flag equals it. Each match counts in ``seen``; the rule fires when
    the position selector holds (``nth``: exactly the nth match; ``first``: the first K matches;
    neither: any match), ``times`` is not used up, and the seeded draw is under ``probability``.
    ``status``/``code`` shape the error of ``error_before``/``error_after``; ``code`` also the
    body of ``ok_with_error_body``.
    """

    kind: FaultKind
    operations: frozenset[str] | None = None
    probability: float = 1.0
    nth: int | None = None
    first: int | None = None
    times: int | None = None
    conditional: bool | None = None
    status: int = 500
    code: str = "InternalError"
    delay_s: float = 0.0
    seen: int = 0
    fired: int = 0

    def __post_init__(self) -> None:
        unknown = (self.operations or frozenset()) - OPERATIONS
        if self.kind not in FAULT_KINDS or unknown:
            raise ValueError(f"unknown fault kind {self.kind!r} or operations {sorted(unknown)}")
        if (self.nth is not None and self.first is not None) or not 0 <= self.probability <= 1:
            raise ValueError("nth and first are exclusive; probability must be within [0, 1]")

    def matches(self, request: S3Request) -> bool:
        return (self.operations is None or request.operation in self.operations) and (
            self.conditional is None or request.conditional == self.conditional
        )

    def due(self) -> bool:
        """Position and budget checks, after ``seen`` counted the current request."""
        return (
            (self.nth is None or self.seen == self.nth)
            and (self.first is None or self.seen <= self.first)
            and (self.times is None or self.fired < self.times)
        )


class FaultEvent(NamedTuple):
    seq: int  # 1-based position of the request among the S3 requests the proxy saw
    operation: str
    kind: str  # a FaultKind, or "dead_503" / "dead_refuse"


class ProxyStats:
    """Thread-safe counters; the logs are bounded so a long run cannot grow them without end."""

    def __init__(self, max_log: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._faults: Counter[tuple[str, str]] = Counter()
        self._events: deque[FaultEvent] = deque(maxlen=max_log)
        self._operations: deque[str] = deque(maxlen=max_log)
        self._errors: deque[str] = deque(maxlen=100)
        self._seq = 0

    def _record(self, operation: str, fault: str | None) -> None:
        with self._lock:
            self._requests[operation] += 1
            if operation != "MotoApi":
                self._seq += 1
                self._operations.append(operation)
            if fault is not None:
                self._faults[(fault, operation)] += 1
                self._events.append(FaultEvent(self._seq, operation, fault))

    def _error(self, message: str) -> None:
        with self._lock:
            self._errors.append(message)

    def seen(self, operation: str | None = None) -> int:
        """Requests seen for ``operation``, or all S3 requests (``/moto-api`` excluded)."""
        with self._lock:
            return self._seq if operation is None else self._requests[operation]

    def faults(self, kind: str | None = None, operation: str | None = None) -> int:
        """Faults injected, filtered by kind and/or operation."""
        with self._lock:
            faults = list(self._faults.items())
        return sum(n for (k, op), n in faults if kind in (None, k) and operation in (None, op))

    def fired(self, kind: str, operation: str | None = None) -> bool:
        """At least one fault of ``kind`` (on ``operation``) was injected."""
        return self.faults(kind, operation) > 0

    def events(self) -> list[FaultEvent]:
        with self._lock:
            return list(self._events)

    def operations(self) -> list[str]:
        """The S3 operations in arrival order (what the client really sent, retries included)."""
        with self._lock:
            return list(self._operations)

    def errors(self) -> list[str]:
        """Proxy-side failures (upstream unreachable, malformed framing): should stay empty."""
        with self._lock:
            return list(self._errors)

    def summary(self) -> str:
        with self._lock:
            seen = ", ".join(f"{op}={n}" for op, n in sorted(self._requests.items()))
            faults = ", ".join(f"{k}@{op}={n}" for (k, op), n in sorted(self._faults.items()))
            errors = f"; errors: {list(self._errors)}" if self._errors else ""
        return f"requests: {seen or '-'}; faults: {faults or '-'}{errors}"
