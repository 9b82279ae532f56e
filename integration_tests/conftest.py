"""Fixtures: one moto server per session, wiped before every test."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from integration_tests.connector import MakeConfig, access_key_credentials, build_config
from integration_tests.s3_server import MotoServer, unique_name


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """A moto server shared by the whole session (started once, stopped at the end)."""
    server = MotoServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3(moto_server: MotoServer) -> MotoServer:
    """The session's server, reset for this test: empty, IAM enforcement off."""
    moto_server.reset()
    return moto_server


@pytest.fixture
def bucket(s3: MotoServer) -> str:
    """A fresh bucket in us-east-1 with a random name."""
    return s3.create_bucket(unique_name("it-bucket"), region="us-east-1")


@pytest.fixture
def make_config(s3: MotoServer) -> MakeConfig:
    """Factory for connector configs pointing at the test server.

    Default credentials are the access keys of the server's admin user (``Allow *``), which stay
    valid if the test later turns IAM enforcement on.
    """

    def factory(
        bucket: str,
        path: str = "",
        format: Mapping[str, Any] | None = None,
        credentials: Mapping[str, Any] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        if credentials is None:
            admin = s3.ensure_admin()
            credentials = access_key_credentials(admin.access_key_id, admin.secret_access_key)
        return build_config(
            bucket,
            endpoint=s3.endpoint,
            credentials=credentials,
            path=path,
            format=format if format is not None else {"format_type": "JSONL"},
            **extra,
        )

    return factory
