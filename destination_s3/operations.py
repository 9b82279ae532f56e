"""What the `write` command (destination_s3.cli) and the CDK's in-process interface
(destination_s3.destination) share: config validation with secret registration, and a sync from
input lines to output lines.

No airbyte_cdk import: failures are raised as `Failed` with a neutral description, which each
caller reports its own way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from destination_s3.catalog import ConfiguredCatalog
from destination_s3.config import ConnectorConfig
from destination_s3.errors import CatalogError, Failed, Failure, FailureType, InputError
from destination_s3.protocol import register_secrets
from destination_s3.storage import StorageError, open_bucket
from destination_s3.sync import Sync
from destination_s3.tuning import Tuning
from destination_s3.validation import ConfigError, secret_values, validate_config

logger = logging.getLogger("airbyte")


def validated_config(raw: Any) -> ConnectorConfig:
    """The typed config, or Failed (config_error) naming every field that is wrong (no value of a
    secret field is ever quoted). Secrets are registered for masking only after validation, so a
    secret that equals a word cannot garble the sentence that explains the error."""
    try:
        validated = validate_config(raw)
    except ConfigError as error:
        failure = Failure(error.message, error.message, FailureType.CONFIG_ERROR, error)
        raise Failed(failure) from None
    register_secrets(secret_values(raw))
    for warning in validated.warnings:
        logger.warning(warning)
    return validated.config


def write_lines(
    config: ConnectorConfig,
    catalog: ConfiguredCatalog,
    blocks: Iterable[bytes],
    tuning: Tuning | None = None,
) -> Iterator[bytes]:
    """Run a sync over `blocks` of whole input lines (see reader.LineBlocks) and yield the output
    lines; a failure the connector can explain (S3, input, catalog) is raised as Failed, anything
    else as is."""
    logger.info("Starting sync: %s", config.summary())
    bucket_name = config.location.bucket
    tuning = tuning or Tuning()
    try:
        bucket = open_bucket(
            config.location, config.credentials, tuning.retry_policy, config.encryption
        )
        sync = Sync(config, catalog, bucket, tuning)
        yield from sync.run(blocks)
    except StorageError as error:
        raise Failed(error.failure.traced(bucket_name, error)) from error
    except (InputError, CatalogError) as error:
        raise Failed(error.traced()) from error


__all__ = ["validated_config", "write_lines"]
