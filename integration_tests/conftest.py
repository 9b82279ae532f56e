"""Fixtures: one moto server per session, wiped before every test."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest

from integration_tests.connector import MakeConfig, build_config
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
    """:func:`build_config` bound to the test server.

    Default credentials are the access keys of the server's admin user (``Allow *``), which stay
    valid if the test later turns IAM enforcement on.
    """
    return functools.partial(build_config, server=s3)
