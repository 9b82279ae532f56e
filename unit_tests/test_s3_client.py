"""The sessions the clients come from: botocore's data files read by orjson give botocore exactly
what its own loader gives (values and key order), so clients behave the same."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from typing import Any

import botocore.regions
import botocore.session
import pytest
from botocore.exceptions import DataNotFoundError, UnknownServiceError

from destination_s3.s3_client import CLIENT_SERVICES, new_session


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


def test_endpoint_data_keeps_every_partition_with_the_client_services_only() -> None:
    ours = new_session().get_component("data_loader").load_data("endpoints")
    full = botocore.session.Session().get_component("data_loader").load_data("endpoints")
    assert sum(len(partition["services"]) for partition in full["partitions"]) > 500  # left out
    for partition in full["partitions"]:
        services = partition["services"]
        partition["services"] = {
            name: services[name] for name in services if name in CLIENT_SERVICES
        }
    assert _key_order(ours) == _key_order(full)
    assert set(ours["partitions"][0]["services"]) == set(CLIENT_SERVICES)  # aws has both


def test_client_services_resolve_in_every_region_as_with_botocores_data() -> None:
    """The legacy resolver botocore consults for a client's region and partition answers the
    same from the cut-down data, for every region of every partition; the clients get the same
    endpoint."""
    sessions = new_session(), botocore.session.Session()
    data = [session.get_component("data_loader").load_data("endpoints") for session in sessions]
    resolvers = [botocore.regions.EndpointResolver(endpoints) for endpoints in data]
    full = data[1]
    regions = [region for partition in full["partitions"] for region in partition["regions"]]
    assert len(regions) > 30
    for region in regions:
        for service in CLIENT_SERVICES:
            answers = [resolver.construct_endpoint(service, region) for resolver in resolvers]
            assert answers[0] == answers[1], (service, region)
    for region in ("us-east-1", "eu-central-1", "cn-north-1", "us-gov-west-1", "us-iso-east-1"):
        for service in CLIENT_SERVICES:
            urls = [
                session.create_client(
                    service, region_name=region, aws_access_key_id="a", aws_secret_access_key="b"
                ).meta.endpoint_url
                for session in sessions
            ]
            assert urls[0] == urls[1], (service, region)


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


@pytest.mark.parametrize("type_name", ["service-2", "endpoint-rule-set-1", "paginators-1"])
def test_services_are_known_by_name_as_botocore_lists_them(type_name: str) -> None:
    ours = new_session().get_component("data_loader").list_available_services(type_name)
    listed = (
        botocore.session.Session().get_component("data_loader").list_available_services(type_name)
    )
    assert "s3" in ours and "sts" in ours
    names = {*listed, "no-such-service", "", ".", "..", "s3/../sts", "S3", 3}
    assert {name for name in names if name in ours} == set(listed)
    assert list(ours) == listed and len(ours) == len(listed) and ours[0] == listed[0]


def test_an_unknown_service_is_refused_with_the_list_of_known_ones() -> None:
    with pytest.raises(UnknownServiceError) as raised:
        new_session().create_client("no-such-service", region_name="eu-west-1")
    assert "s3, s3control" in str(raised.value) or ", s3," in str(raised.value)


def test_aws_data_path_is_searched_as_botocore_searches_it(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model under AWS_DATA_PATH (how users add or pin service models) is found, first."""
    model = (
        botocore.session.Session()
        .get_component("data_loader")
        .load_service_model("sts", "service-2")
    )
    model["metadata"]["serviceFullName"] = "STS from AWS_DATA_PATH"
    folder = tmp_path / "sts" / "2011-06-15"
    folder.mkdir(parents=True)
    (folder / "service-2.json").write_text(json.dumps(model))
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    loaded = new_session().get_component("data_loader").load_service_model("sts", "service-2")
    assert loaded["metadata"]["serviceFullName"] == "STS from AWS_DATA_PATH"


@pytest.mark.parametrize("name", ["endpoints.json", "endpoints.json.gz"])
def test_endpoint_data_from_aws_data_path_is_cut_down_too(
    name: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An endpoints file users put under AWS_DATA_PATH, plain or gzipped as botocore ships its
    own, is read for the client services alone, like botocore's."""
    data = botocore.session.Session().get_component("data_loader").load_data("endpoints")
    data["partitions"][0]["regions"]["xx-test-1"] = {"description": "from AWS_DATA_PATH"}
    text = json.dumps(data).encode()
    (tmp_path / name).write_bytes(gzip.compress(text) if name.endswith(".gz") else text)
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    loaded = new_session().get_component("data_loader").load_data("endpoints")
    assert "xx-test-1" in loaded["partitions"][0]["regions"]
    assert all(set(p["services"]) <= set(CLIENT_SERVICES) for p in loaded["partitions"])


def test_crc32_checksum_is_the_standard_crc32_s3_checks() -> None:
    """ISA-L computes it; S3 compares it with zlib's CRC-32 of the body, base64 of 4 bytes."""
    import base64
    import random
    import zlib

    from destination_s3.s3_client import crc32_checksum

    rng = random.Random(3)
    bodies = [b"", b"a", b"\xff" * 7, rng.randbytes(5 * 1024 * 1024 + 3)]
    bodies += [rng.randbytes(rng.randrange(0, 5000)) for _ in range(300)]
    for body in bodies:
        expected = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
        assert crc32_checksum(body) == expected
