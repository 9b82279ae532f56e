"""Builds the S3 clients (static keys, an assumed role whose credentials refresh themselves, or the
default chain) with the connector's one retry policy.

Retries happen in exactly one place: botocore's "standard" mode, configured here. It retries the
transient failures (throttling such as SlowDown, 5xx, RequestTimeout, connection errors and
resets) with jittered exponential backoff (at most 20 s between attempts) and surfaces everything
else (AccessDenied, NoSuchBucket, …) at once. No library wraps these calls in a retry loop of its
own, so every error reaches the user with its S3 code, after a time the user can predict:
`max_attempts` tries, the backoff between them summing to at most 1 + 2 + 4 + … seconds.

Clients come from botocore sessions, boto3's core, without boto3's own Session: it adds only the
resource and managed-transfer layers, which the connector does not use (its multipart calls are
its own, see upload.py), and importing it costs every sync about 0.1 s of CPU and 3 MB at start.
Their sessions read botocore's data files (the S3 model, 1.3 MB of endpoints) with orjson, not
json with an OrderedDict per object: the same dicts, in the same key order, for half the CPU of
making a client (0.21 -> 0.12 s for the two S3 clients of a sync). And before loading a model,
botocore checks the service is known by listing every service folder it has (455: a listdir and
stats each, 0.045 s); here the check looks at that service's own folder (_ServiceNames). Of the
endpoints file, only S3's and STS's entries are built (endpoint_data): about 30 ms less.

Bodies (parts, small objects) are sent as the bytes they are, with a CRC32 computed here
(`crc32_checksum`, with ISA-L) in the x-amz-checksum-crc32 header, which S3 checks before it stores
them. botocore would wrap them in a file object instead: an `Expect: 100-continue` round trip
before every body, the body read and sent 16 KiB at a time by Python code that needs the GIL for
each block (competing with the main thread), and, over https, an aws-chunked stream with its CRC32
in a trailer. Sent whole, a body goes out in one `sendall` that runs without the GIL. The integrity
check is the same CRC32 botocore sends by default (and, like botocore's, it is left out when
AWS_REQUEST_CHECKSUM_CALCULATION=when_required: see Bucket.checksum_args). Over https no request
payload is SHA-256 signed (UNSIGNED-PAYLOAD, part of SigV4 for S3): TLS protects every body in
transit, and data bodies also carry their CRC32; botocore already sends PutObject and UploadPart
bodies unsigned over https. Over http every payload is signed.
Measured on the benchmark (JSONL, http): wall 4.7-5.1 -> 4.3-4.5 s, process CPU -0.3 s.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, cast

import botocore.credentials
import botocore.loaders
import botocore.session
import msgspec
import orjson
from botocore.config import Config
from botocore.handlers import convert_body_to_file_like_object

from destination_s3.config import AccessKeyCredentials, Credentials, RoleCredentials, S3Location

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sts import STSClient

ROLE_SESSION_NAME = "tarsal-destination-s3"
ROLE_SESSION_SECONDS = 3600

DEFAULT_MAX_ATTEMPTS = 6


@dataclass(frozen=True)
class RetryPolicy:
    """How hard a call tries before its failure is reported.

    The defaults give up on an unreachable endpoint within about 35 s (six connection attempts,
    the backoff between them summing to at most 31 s) and within about 65 s when packets are
    silently dropped (six 5 s connect timeouts on top). Best-effort calls made while a failing or
    cancelled sync shuts down (aborting uploads) use `quick`: within a few seconds.
    """

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    connect_timeout: float = 5.0
    read_timeout: float = 60.0

    def quick(self) -> RetryPolicy:
        return RetryPolicy(max_attempts=2, connect_timeout=2.0, read_timeout=5.0)

    def worst_case_backoff_seconds(self) -> int:
        return sum(min(2**attempt, 20) for attempt in range(self.max_attempts - 1))

    def botocore_config(self, location: S3Location, max_pool_connections: int) -> Config:
        s3_options: dict[str, Any] = {}
        if location.endpoint is None or location.endpoint.startswith("https:"):
            # Every call's payload, not only data bodies: TLS protects them in transit, and data
            # bodies carry their CRC32 too (see the module docstring).
            s3_options["payload_signing_enabled"] = False
        if location.endpoint:
            # S3-compatible stores (MinIO, R2, a local server) rarely resolve bucket subdomains.
            s3_options["addressing_style"] = "path"
        return Config(
            region_name=location.region,
            retries={"mode": "standard", "total_max_attempts": self.max_attempts},
            max_pool_connections=max_pool_connections,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            tcp_keepalive=True,
            s3=s3_options,  # type: ignore[arg-type]
        )


# The services the connector makes clients of (s3_client, assumed_role_session).
CLIENT_SERVICES = ("s3", "sts")
_ClientServices = msgspec.defstruct(
    "_ClientServices", [(name, msgspec.Raw, msgspec.Raw()) for name in CLIENT_SERVICES]
)
_RAW_OBJECT = msgspec.json.Decoder(dict[str, msgspec.Raw])
_RAW_OBJECTS = msgspec.json.Decoder(list[dict[str, msgspec.Raw]])
_CLIENT_SERVICES = msgspec.json.Decoder(_ClientServices)


def endpoint_data(raw: bytes) -> dict[str, Any]:
    """botocore's endpoints.json, with each partition's services cut down to CLIENT_SERVICES.

    The file describes every endpoint of 300+ services (1.2 MB); a client reads its own service's.
    Building all of it cost each sync about 30 ms of CPU. msgspec skips the other services' text
    without making objects of it; everything else, partitions' regions included, is kept."""

    def services(text: msgspec.Raw) -> dict[str, Any]:
        known = _CLIENT_SERVICES.decode(text)
        found = ((name, getattr(known, name)) for name in CLIENT_SERVICES)
        return {name: orjson.loads(bytes(value)) for name, value in found if len(value)}

    def partition(fields: dict[str, msgspec.Raw]) -> dict[str, Any]:
        return {
            key: services(value) if key == "services" else orjson.loads(bytes(value))
            for key, value in fields.items()
        }

    return {
        key: [partition(fields) for fields in _RAW_OBJECTS.decode(value)]
        if key == "partitions"
        else orjson.loads(bytes(value))
        for key, value in _RAW_OBJECT.decode(raw).items()
    }


class _OrjsonFileLoader(botocore.loaders.JSONFileLoader):
    """botocore's JSON data files, parsed by orjson (botocore reads `.json` and `.json.gz`);
    endpoints.json for the client services only (endpoint_data)."""

    def _load_file(self, full_path: str, open_method: Callable[..., IO[bytes]]) -> Any:
        if not os.path.isfile(full_path):
            return None
        with open_method(full_path, "rb") as file:
            raw = file.read()
        if os.path.basename(full_path) in ("endpoints.json", "endpoints.json.gz"):
            return endpoint_data(raw)
        return orjson.loads(raw)


class _ServiceNames(Sequence[str]):
    """The services with a model of one type, as botocore's Loader lists them; `name in` them
    looks only at that service's folders. Anything else lists them all, as botocore does."""

    def __init__(self, loader: _ModelLoader, type_name: str) -> None:
        self._loader = loader
        self._type_name = type_name

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str) or not name or os.sep in name or name in (".", ".."):
            return False
        for path in self._loader.search_paths:
            folder = os.path.join(path, name)
            if not os.path.isdir(folder):
                continue
            for version in os.listdir(folder):
                if self._loader.file_loader.exists(os.path.join(folder, version, self._type_name)):
                    return True
        return False

    def _all(self) -> list[str]:
        return botocore.loaders.Loader.list_available_services(self._loader, self._type_name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __getitem__(self, index: Any) -> Any:
        return self._all()[index]

    def __len__(self) -> int:
        return len(self._all())


class _ModelLoader(botocore.loaders.Loader):
    """botocore's model loader: its data files read by orjson, its services checked by name."""

    FILE_LOADER_CLASS = _OrjsonFileLoader

    # botocore uses the answer with `in`, and `", ".join` in its UnknownServiceError: a Sequence.
    def list_available_services(self, type_name: str) -> _ServiceNames:  # type: ignore[override]
        return _ServiceNames(self, type_name)


def new_session() -> botocore.session.Session:
    """A botocore session whose models come from _ModelLoader, searched where botocore's own
    loader searches them (AWS_DATA_PATH, then ~/.aws/models, then botocore's data)."""
    session = botocore.session.Session()
    # botocore's loader resolves the search paths (making it reads no file); ours takes them over.
    paths = list(session.get_component("data_loader").search_paths)
    loader = _ModelLoader(extra_search_paths=paths, include_default_search_paths=False)
    session.register_component("data_loader", loader)
    return session


class _AssumedRoleProvider(botocore.credentials.CredentialProvider):
    """Gives a session the assumed role's credentials, refreshed by botocore before they expire."""

    METHOD = "destination-s3-assume-role"
    CANONICAL_NAME = "destination-s3-assume-role"

    def __init__(self, credentials: botocore.credentials.RefreshableCredentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> botocore.credentials.RefreshableCredentials:
        return self._credentials


def assumed_role_session(
    location: S3Location, role: RoleCredentials, policy: RetryPolicy
) -> botocore.session.Session:
    """A session holding the role's temporary credentials. Raises what sts:AssumeRole raised."""
    sts = cast(
        "STSClient",
        new_session().create_client(
            "sts",
            region_name=location.region,
            endpoint_url=location.endpoint,
            config=policy.botocore_config(location, 1),
        ),
    )

    def fetch() -> dict[str, str]:
        request: dict[str, Any] = {
            "RoleArn": role.role_arn,
            "RoleSessionName": ROLE_SESSION_NAME,
            "DurationSeconds": ROLE_SESSION_SECONDS,
        }
        if role.external_id:
            request["ExternalId"] = role.external_id
        issued = sts.assume_role(**request)["Credentials"]
        return {
            "access_key": issued["AccessKeyId"],
            "secret_key": issued["SecretAccessKey"],
            "token": issued["SessionToken"],
            "expiry_time": issued["Expiration"].isoformat(),
        }

    refreshable = botocore.credentials.RefreshableCredentials.create_from_metadata(
        metadata=fetch(), refresh_using=fetch, method=_AssumedRoleProvider.METHOD
    )
    session = new_session()
    resolver = session.get_component("credential_provider")
    resolver.insert_before("env", _AssumedRoleProvider(refreshable))
    return session


def client_session(
    credentials: Credentials, role_session: botocore.session.Session | None
) -> botocore.session.Session:
    """The session the S3 clients are made from: the configured keys, the assumed role's session,
    or the default credential chain (environment, profile, instance or task role)."""
    if isinstance(credentials, AccessKeyCredentials):
        session = new_session()
        session.set_credentials(credentials.access_key_id, credentials.secret_access_key)
        return session
    if role_session is not None:
        return role_session
    return new_session()


def s3_client(
    session: botocore.session.Session,
    location: S3Location,
    policy: RetryPolicy,
    max_pool_connections: int = 16,
) -> S3Client:
    client = session.create_client(
        "s3",
        endpoint_url=location.endpoint,
        config=policy.botocore_config(location, max_pool_connections),
    )
    for operation in ("PutObject", "UploadPart"):
        # Bodies stay bytes: see the module docstring.
        client.meta.events.unregister(
            f"before-parameter-build.s3.{operation}", convert_body_to_file_like_object
        )
    return cast("S3Client", client)


def crc32_checksum(body: bytes) -> str:
    """`ChecksumCRC32` of a request: S3 checks `body` against it before storing the body.

    ISA-L's CRC-32 (isal, already the GZIP codec): zlib's value, with the CPU's carry-less
    multiply, 11 GB/s here against zlib's 2.7, in an upload thread without the GIL. Imported on
    the first body, not at start-up (a sync without records never pays for it)."""
    from isal import isal_zlib

    return base64.b64encode(isal_zlib.crc32(body).to_bytes(4, "big")).decode()
