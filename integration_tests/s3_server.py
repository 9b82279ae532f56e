"""A real moto S3/IAM/STS server on 127.0.0.1 (no monkeypatching, only HTTP).

The one local S3 of the repository: the integration tests, the benchmark (``python -m
benchmarks``) and the demo (``make demo``) all start it through :class:`MotoServer`, and point
the connector at it with :func:`integration_tests.connector.build_config`.

Typical use::

    server = MotoServer.start()
    server.create_bucket("my-bucket")
    user = server.create_user_with_policy("writer", seed_policy("my-bucket"))
    server.enforce_iam(True)          # from now on every request is authenticated and authorised
    server.list_keys("my-bucket")     # admin helpers keep working (they use a real admin user)
    server.stop()

``MotoServer.start(log_path=..., python=...)`` keeps the server's request log in a file of your
choice (it is deleted on stop otherwise) and runs moto under another interpreter.

Facts about moto 5.2 this module is built around (checked against the running server):

* IAM enforcement is switched with ``POST /moto-api/reset-auth`` and a ``text/plain`` body: ``0``
  enforces from the next request on, ``inf`` turns it off again.
* ``POST /moto-api/reset`` wipes every backend (buckets, users, keys, roles) but does NOT turn
  enforcement off; :meth:`MotoServer.reset` does both.
* Once enforcement is on, only keys of existing IAM users (or STS session keys) are accepted; any
  other key gets ``InvalidAccessKeyId``. So an admin user with an ``Allow * on *`` policy is created
  before enforcement starts, and the admin helpers sign with its keys.
* ``sts:AssumeRole`` needs BOTH a trust policy naming the exact user ARN (the account root ARN is
  not accepted) AND an identity policy on the caller allowing ``sts:AssumeRole`` (AWS would not
  need the latter inside one account). :meth:`MotoServer.create_role` grants it by default.
* A trust condition ``StringEquals sts:ExternalId`` rejects a WRONG external id, but moto lets an
  AssumeRole call WITHOUT any ExternalId through (AWS denies it). Tests must not rely on moto for
  "missing external id is denied".
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
import weakref
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import boto3
from botocore.config import Config

ACCOUNT_ID = "123456789012"
"""moto's default account: every ARN the server hands out lives in it."""

DEFAULT_REGION = "us-east-1"

UNAUTHENTICATED_KEY_ID = "testing-access-key-id"
"""Keys used while enforcement is off and no admin user exists (anything is accepted then)."""
UNAUTHENTICATED_SECRET = "testing-secret-access-key"

ADMIN_USER_NAME = "it-admin"

START_TIMEOUT_S = 10.0

DEFAULT_MAX_POOL_CONNECTIONS = 10
"""botocore's default HTTP connection pool size per client."""

PolicyDocument = dict[str, Any]


class UserKeys(NamedTuple):
    """Access keys of an IAM user; unpacks as ``(access_key_id, secret_access_key, arn)``."""

    access_key_id: str
    secret_access_key: str
    arn: str


class SessionKeys(NamedTuple):
    """Temporary STS credentials (from AssumeRole)."""

    access_key_id: str
    secret_access_key: str
    session_token: str


class MotoServerError(RuntimeError):
    """The moto server could not be started or did not answer a control request."""


# ---------------------------------------------------------------------------------------------
# Policy documents (pure functions: no server needed)
# ---------------------------------------------------------------------------------------------


def seed_policy(
    bucket: str,
    path_prefix: str = "",
    *,
    extra_object_actions: Sequence[str] = (),
    extra_bucket_actions: Sequence[str] = (),
) -> PolicyDocument:
    """The least-privilege policy of the product documentation.

    ``s3:PutObject`` on ``arn:aws:s3:::BUCKET/*`` plus ``s3:ListBucket`` and
    ``s3:GetBucketLocation`` on ``arn:aws:s3:::BUCKET``. With ``path_prefix`` the object statement
    is narrowed to ``arn:aws:s3:::BUCKET/PREFIX/*``. Extra actions are appended to the object
    statement (e.g. ``s3:DeleteObject``) or the bucket statement (e.g.
    ``s3:ListBucketMultipartUploads``).
    """
    prefix = path_prefix.strip("/")
    object_resource = f"arn:aws:s3:::{bucket}/{prefix}/*" if prefix else f"arn:aws:s3:::{bucket}/*"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "WriteObjects",
                "Effect": "Allow",
                "Action": ["s3:PutObject", *extra_object_actions],
                "Resource": object_resource,
            },
            {
                "Sid": "ListAndLocateBucket",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:GetBucketLocation", *extra_bucket_actions],
                "Resource": f"arn:aws:s3:::{bucket}",
            },
        ],
    }


def seed_policy_with_delete(bucket: str, path_prefix: str = "") -> PolicyDocument:
    """The seed policy plus ``s3:DeleteObject`` (what overwrite mode needs)."""
    return seed_policy(bucket, path_prefix, extra_object_actions=["s3:DeleteObject"])


def allow_all_policy() -> PolicyDocument:
    """``Allow * on *``: the admin user's policy."""
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }


def deny_all_policy() -> PolicyDocument:
    """A policy that allows nothing useful (explicit deny of everything)."""
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}],
    }


def trust_policy(trusted_user_arn: str, external_id: str | None = None) -> PolicyDocument:
    """Role trust policy: Principal = the exact user ARN, optional ``sts:ExternalId`` condition."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": trusted_user_arn},
        "Action": "sts:AssumeRole",
    }
    if external_id is not None:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    return {"Version": "2012-10-17", "Statement": [statement]}


def user_name_from_arn(arn: str) -> str:
    """``arn:aws:iam::123456789012:user/some/path/name`` -> ``name``."""
    resource = arn.split(":", 5)[-1]
    if not resource.startswith("user/"):
        raise ValueError(f"not an IAM user ARN: {arn}")
    return resource.rsplit("/", 1)[-1]


def unique_name(prefix: str) -> str:
    """``prefix-<12 hex chars>``: valid as bucket, user or role name when prefix is."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


_SESSION: boto3.session.Session | None = None


def _boto_session() -> boto3.session.Session:
    """One shared session (building a session per client would reload botocore's data)."""
    global _SESSION
    if _SESSION is None:
        _SESSION = boto3.session.Session()
    return _SESSION


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# ---------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------


_LIVE_SERVERS: weakref.WeakSet[MotoServer] = weakref.WeakSet()


@atexit.register
def _stop_leftover_servers() -> None:
    for server in list(_LIVE_SERVERS):
        server.stop()


def _self_signed_certificate(host: str) -> str:
    """A PEM file with a fresh key and a one-day certificate for `host` (an IP address)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    fd, path = tempfile.mkstemp(prefix="moto-tls-", suffix=".pem")
    with os.fdopen(fd, "wb") as pem:
        pem.write(certificate.public_bytes(serialization.Encoding.PEM))
        pem.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return path


class MotoServer:
    """One ``moto_server`` subprocess on 127.0.0.1 with its own port, state and process group.

    ``log_path``: where the server's stdout/stderr (its request log) goes; the file is kept after
    :meth:`stop`. By default a temporary file, deleted on stop. ``python``: the interpreter that
    runs ``-m moto.server`` (default: this one).
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        host: str = "127.0.0.1",
        log_path: str | os.PathLike[str] | None = None,
        python: str = sys.executable,
        tls: bool = False,
    ) -> None:
        self.host = host
        self.port = port if port is not None else _free_port()
        # With `tls`, the server speaks https with a self-signed certificate for `host`; clients
        # trust it through `ca_bundle` (the connector: AWS_CA_BUNDLE, see `client_env`).
        self.ca_bundle: str | None = _self_signed_certificate(host) if tls else None
        self.endpoint = f"{'https' if tls else 'http'}://{host}:{self.port}"
        self.python = python
        self._process: subprocess.Popen[bytes] | None = None
        self._keep_log = log_path is not None
        self._log_path: str | None = os.fspath(log_path) if log_path is not None else None
        self._admin: UserKeys | None = None
        self._iam_enforced = False
        self._clients: dict[tuple[str, str, str, int], Any] = {}

    # -- lifecycle -----------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        *,
        attempts: int = 3,
        log_path: str | os.PathLike[str] | None = None,
        python: str = sys.executable,
        timeout: float = START_TIMEOUT_S,
        tls: bool = False,
    ) -> MotoServer:
        """Start a server on a free port (retrying on a fresh port if that one got taken)."""
        last_error: MotoServerError | None = None
        for _ in range(attempts):
            server = cls(log_path=log_path, python=python, tls=tls)
            try:
                server.launch(timeout)
                return server
            except MotoServerError as exc:
                last_error = exc
        assert last_error is not None
        raise last_error

    def launch(self, timeout: float = START_TIMEOUT_S) -> None:
        """Start the subprocess and poll until it answers (at most ``timeout`` seconds)."""
        if self._process is not None:
            raise MotoServerError("server already started")
        # moto logs every request on stderr: a file, not a pipe nobody drains (a full pipe would
        # block the server).
        if self._keep_log:
            assert self._log_path is not None
            os.makedirs(os.path.dirname(os.path.abspath(self._log_path)), exist_ok=True)
            log_fd = os.open(self._log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        else:
            log_fd, self._log_path = tempfile.mkstemp(prefix="moto-server-", suffix=".log")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
        command = [self.python, "-m", "moto.server", "-H", self.host, "-p", str(self.port)]
        if self.ca_bundle is not None:
            command += ["--ssl-cert", self.ca_bundle, "--ssl-key", self.ca_bundle]
        try:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # own process group: stop() kills the whole group
            )
        finally:
            os.close(log_fd)  # the child has its own copy
        _LIVE_SERVERS.add(self)
        deadline = time.monotonic() + timeout
        while True:
            returncode = self._process.poll()
            if returncode is not None:
                output = self.server_log()
                self.stop()
                raise MotoServerError(
                    f"moto server on port {self.port} exited with code {returncode}:\n{output}"
                )
            if self._answers():
                return
            if time.monotonic() > deadline:
                output = self.server_log()
                self.stop()
                raise MotoServerError(
                    f"moto server on port {self.port} did not answer within {timeout} s:\n{output}"
                )
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            # moto answers this GET with 201; any HTTP answer means the server is serving.
            url = f"{self.endpoint}/moto-api/config"
            with urllib.request.urlopen(url, timeout=1, context=self._ssl_context()):
                return True
        except urllib.error.HTTPError:
            return True
        except (urllib.error.URLError, OSError):
            return False

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def log_path(self) -> str | None:
        """The file holding the server's output (None once a temporary log was deleted)."""
        return self._log_path

    def server_log(self, tail_bytes: int = 20_000) -> str:
        """The last ``tail_bytes`` of the server's stdout/stderr (request log, tracebacks)."""
        if self._log_path is None:
            return ""
        try:
            with open(self._log_path, "rb") as log:
                size = log.seek(0, os.SEEK_END)
                log.seek(max(0, size - tail_bytes))
                return log.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """Terminate the server's process group (SIGTERM, then SIGKILL after 5 s). Idempotent."""
        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        if self._log_path is not None and not self._keep_log:
            with contextlib.suppress(OSError):
                os.unlink(self._log_path)
            self._log_path = None
        if self.ca_bundle is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.ca_bundle)
        self._clients.clear()
        self._admin = None
        self._iam_enforced = False
        _LIVE_SERVERS.discard(self)

    def __enter__(self) -> MotoServer:
        if self._process is None:
            self.launch()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- control API ---------------------------------------------------------------------------

    def _control(self, path: str, body: bytes = b"") -> Any:
        request = urllib.request.Request(
            f"{self.endpoint}{path}",
            data=body,
            method="POST",
            headers={"Content-Type": "text/plain"},  # required by reset-auth
        )
        try:
            with urllib.request.urlopen(request, timeout=30, context=self._ssl_context()) as resp:
                payload = resp.read()
        except (urllib.error.URLError, OSError) as exc:
            raise MotoServerError(f"POST {path} failed: {exc}\n{self.server_log()}") from exc
        try:
            return json.loads(payload)
        except ValueError:
            return payload.decode("utf-8", "replace")

    def detach(self) -> int:
        """Let the server outlive this process (no stop at exit); returns its pid."""
        assert self._process is not None, "server not started"
        _LIVE_SERVERS.discard(self)
        self._keep_log = True
        return self._process.pid

    def _ssl_context(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=self.ca_bundle) if self.ca_bundle else None

    def client_env(self) -> dict[str, str]:
        """Environment variables a client process (the connector) needs to reach this server."""
        return {"AWS_CA_BUNDLE": self.ca_bundle} if self.ca_bundle else {}

    def reset(self) -> None:
        """Wipe all state (buckets, objects, users, roles) and turn IAM enforcement off."""
        self._control("/moto-api/reset")
        self._control("/moto-api/reset-auth", b"inf")  # reset alone leaves enforcement as it was
        self._admin = None
        self._iam_enforced = False
        self._clients.clear()

    def reset_bucket(self, bucket: str, region: str = DEFAULT_REGION) -> str:
        """:meth:`reset`, then create an empty ``bucket``; returns its name."""
        self.reset()
        return self.create_bucket(bucket, region=region)

    def enforce_iam(self, enabled: bool = True) -> None:
        """Turn IAM enforcement on (every later request is checked) or off.

        Before turning it on, an admin user with ``Allow * on *`` is created (once per reset) so
        the admin helpers keep working.
        """
        if enabled:
            self.ensure_admin()
        self._control("/moto-api/reset-auth", b"0" if enabled else b"inf")
        self._iam_enforced = enabled

    @property
    def iam_enforced(self) -> bool:
        return self._iam_enforced

    # -- clients -------------------------------------------------------------------------------

    def ensure_admin(self) -> UserKeys:
        """The admin user's keys, creating the user (``Allow * on *``) if needed."""
        if self._admin is None:
            if self._iam_enforced:
                raise MotoServerError("cannot create the admin user while IAM is enforced")
            self._admin = self.create_user_with_policy(ADMIN_USER_NAME, allow_all_policy())
            self._clients.clear()
        return self._admin

    @property
    def admin_keys(self) -> UserKeys | None:
        """The admin user's keys if it exists (it does once enforcement has been turned on)."""
        return self._admin

    def client(
        self,
        service: str,
        access_key_id: str,
        secret_access_key: str,
        session_token: str | None = None,
        *,
        region: str = DEFAULT_REGION,
        max_pool_connections: int = DEFAULT_MAX_POOL_CONNECTIONS,
    ) -> Any:
        """A boto3 client for this server signed with the given credentials.

        ``max_pool_connections``: HTTP connections it keeps (raise it for many threads).
        """
        return _boto_session().client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint,
            verify=self.ca_bundle if self.ca_bundle else None,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            aws_session_token=session_token,
            config=Config(
                connect_timeout=5,
                read_timeout=60,
                retries={"max_attempts": 2, "mode": "standard"},
                max_pool_connections=max_pool_connections,
            ),
        )

    def user_client(self, service: str, keys: UserKeys | SessionKeys, **kwargs: Any) -> Any:
        """A client signed with a user's (or an assumed role's) keys."""
        token = keys.session_token if isinstance(keys, SessionKeys) else None
        return self.client(service, keys.access_key_id, keys.secret_access_key, token, **kwargs)

    def admin_client(
        self,
        service: str,
        region: str = DEFAULT_REGION,
        *,
        max_pool_connections: int = DEFAULT_MAX_POOL_CONNECTIONS,
    ) -> Any:
        """A client with full rights: the admin user's keys if it exists, any keys otherwise.

        Works whether enforcement is on or off (enforcement always creates the admin first).
        Clients are cached (boto3 clients are thread-safe): one per service, region and pool size.
        """
        if self._admin is not None:
            key_id, secret = self._admin.access_key_id, self._admin.secret_access_key
        else:
            key_id, secret = UNAUTHENTICATED_KEY_ID, UNAUTHENTICATED_SECRET
        cache_key = (service, region, key_id, max_pool_connections)
        cached = self._clients.get(cache_key)
        if cached is None:
            cached = self.client(
                service, key_id, secret, region=region, max_pool_connections=max_pool_connections
            )
            self._clients[cache_key] = cached
        return cached

    # -- IAM / STS helpers ---------------------------------------------------------------------

    def create_user_with_policy(
        self, user_name: str, policy_document: PolicyDocument | None
    ) -> UserKeys:
        """Create an IAM user with an inline policy (None: no policy) and an access key."""
        iam = self.admin_client("iam")
        user = iam.create_user(UserName=user_name)["User"]
        if policy_document is not None:
            iam.put_user_policy(
                UserName=user_name,
                PolicyName=f"{user_name}-policy",
                PolicyDocument=json.dumps(policy_document),
            )
        key = iam.create_access_key(UserName=user_name)["AccessKey"]
        return UserKeys(key["AccessKeyId"], key["SecretAccessKey"], user["Arn"])

    def put_user_policy(
        self, user_name: str, policy_name: str, policy_document: PolicyDocument
    ) -> None:
        """Add (or replace) an inline policy on an existing user."""
        self.admin_client("iam").put_user_policy(
            UserName=user_name, PolicyName=policy_name, PolicyDocument=json.dumps(policy_document)
        )

    def create_role(
        self,
        role_name: str,
        trusted_user_arn: str,
        policy_document: PolicyDocument,
        external_id: str | None = None,
        *,
        grant_assume: bool = True,
    ) -> str:
        """Create a role the given user may assume; returns the role ARN.

        The trust policy names the exact user ARN, with a ``StringEquals sts:ExternalId`` condition
        when ``external_id`` is given. With ``grant_assume`` (default) the user also gets an inline
        policy allowing ``sts:AssumeRole`` on this role, which moto requires (see module doc).
        """
        iam = self.admin_client("iam")
        role_arn: str = iam.create_role(
            RoleName=role_name,
            AssumeRolePolicyDocument=json.dumps(trust_policy(trusted_user_arn, external_id)),
        )["Role"]["Arn"]
        iam.put_role_policy(
            RoleName=role_name,
            PolicyName=f"{role_name}-policy",
            PolicyDocument=json.dumps(policy_document),
        )
        if grant_assume:
            self.put_user_policy(
                user_name_from_arn(trusted_user_arn),
                f"assume-{role_name}",
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_arn}
                    ],
                },
            )
        return role_arn

    def assume_role(
        self,
        keys: UserKeys,
        role_arn: str,
        external_id: str | None = None,
        session_name: str = "integration-test",
    ) -> SessionKeys:
        """AssumeRole as the given user (raises botocore ClientError AccessDenied if refused)."""
        kwargs: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": session_name}
        if external_id is not None:
            kwargs["ExternalId"] = external_id
        creds = self.user_client("sts", keys).assume_role(**kwargs)["Credentials"]
        return SessionKeys(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])

    # -- S3 helpers (admin rights) ---------------------------------------------------------------

    def create_bucket(self, name: str, region: str = DEFAULT_REGION) -> str:
        """Create a bucket in ``region`` (us-east-1 has no LocationConstraint); returns the name."""
        s3 = self.admin_client("s3", region=region)
        if region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
        return name

    def bucket_region(self, bucket: str) -> str:
        """GetBucketLocation, normalised (``None`` means us-east-1)."""
        location = self.admin_client("s3").get_bucket_location(Bucket=bucket)
        return str(location.get("LocationConstraint") or "us-east-1")

    def list_buckets(self) -> list[str]:
        return sorted(b["Name"] for b in self.admin_client("s3").list_buckets().get("Buckets", []))

    def put_object(self, bucket: str, key: str, body: bytes | str = b"") -> None:
        """Seed an object (e.g. a neighbour file that overwrite mode must not touch)."""
        data = body.encode() if isinstance(body, str) else body
        self.admin_client("s3").put_object(Bucket=bucket, Key=key, Body=data)

    def list_objects(self, bucket: str, prefix: str = "") -> list[dict[str, Any]]:
        """All objects under ``prefix`` (``Key``, ``Size``, ``LastModified``, ...) by key."""
        paginator = self.admin_client("s3").get_paginator("list_objects_v2")
        objects: list[dict[str, Any]] = []
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            objects.extend(page.get("Contents", []))
        return sorted(objects, key=lambda o: str(o["Key"]))

    def data_keys(self, bucket: str, prefix: str = "") -> list[str]:
        """The keys of data objects: not the connector's bookkeeping under `_tarsal_*` prefixes
        (generation markers, manifests, the check's probe), which readers skip."""
        return [key for key in self.list_keys(bucket, prefix) if "_tarsal_" not in key]

    def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        """All keys under ``prefix``, sorted."""
        return [str(o["Key"]) for o in self.list_objects(bucket, prefix)]

    def read_object(self, bucket: str, key: str) -> bytes:
        body: bytes = self.admin_client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    def read_objects(self, bucket: str, prefix: str = "") -> dict[str, bytes]:
        """Every object under ``prefix``: key -> body, in key order."""
        return {key: self.read_object(bucket, key) for key in self.list_keys(bucket, prefix)}

    def read_text(self, bucket: str, key: str) -> str:
        return self.read_object(bucket, key).decode("utf-8")

    def read_jsonl(self, bucket: str, key: str) -> list[Any]:
        """The object's lines parsed as JSON (blank lines skipped)."""
        return [json.loads(line) for line in self.read_text(bucket, key).splitlines() if line]

    def delete_keys(self, bucket: str, keys: Iterable[str]) -> None:
        s3 = self.admin_client("s3")
        for key in keys:
            s3.delete_object(Bucket=bucket, Key=key)

    def list_multipart_uploads(self, bucket: str) -> list[dict[str, Any]]:
        """Multipart uploads still open in the bucket (``Key``, ``UploadId``, ...)."""
        response = self.admin_client("s3").list_multipart_uploads(Bucket=bucket)
        uploads: list[dict[str, Any]] = response.get("Uploads", [])
        return uploads
