"""The sessions the clients come from: botocore's data files read by orjson give botocore exactly
what its own loader gives (values and key order), so clients behave the same."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import DataNotFoundError

from destination_s3.s3_client import new_session


def _key_order(value: Any) -> Any:
    """Every dict's keys in order, nested: equal dicts in another order would compare equal."""
    if isinstance(value, dict):
        return [(key, _key_order(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [_key_order(item) for item in value]
    return value


LOADS: dict[str, Callable[[Any], Any]] = {
    "s3 model": lambda loader: loader.load_service_model("s3", "service-2"),
    "s3 endpoint rules": lambda loader: loader.load_service_model("s3", "endpoint-rule-set-1"),
    "sts model": lambda loader: loader.load_service_model("sts", "service-2"),
    "endpoints": lambda loader: loader.load_data("endpoints"),
    "partitions": lambda loader: loader.load_data("partitions"),
    "retry": lambda loader: loader.load_data("_retry"),
}


@pytest.mark.parametrize("name", LOADS)
def test_data_files_load_as_botocore_loads_them(name: str) -> None:
    load = LOADS[name]
    ours = load(new_session().get_component("data_loader"))
    botocores = load(botocore.session.Session().get_component("data_loader"))
    assert ours == botocores
    assert _key_order(ours) == _key_order(botocores)


def test_a_missing_data_file_is_reported_as_botocore_reports_it() -> None:
    with pytest.raises(DataNotFoundError):
        new_session().get_component("data_loader").load_service_model("no-such-service", "x")


def test_a_client_is_made_with_the_same_operations() -> None:
    def operations(session: botocore.session.Session) -> list[str]:
        client = session.create_client(
            "s3", region_name="eu-west-1", aws_access_key_id="a", aws_secret_access_key="b"
        )
        return list(client.meta.service_model.operation_names)

    assert operations(new_session()) == operations(botocore.session.Session())
