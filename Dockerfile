# destination-s3: Airbyte-protocol destination writing JSONL, CSV or Parquet files to Amazon S3.
# Conventions: https://docs.airbyte.com/connector-development/ (WORKDIR, AIRBYTE_ENTRYPOINT, labels).
FROM python:3.11.7-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /airbyte/integration_code

# Only what the install needs. The top-level spec.json is a symlink into the package, whose copy
# (destination_s3/spec.json) is the one the CDK loads, so it is not copied separately.
COPY setup.py main.py ./
COPY destination_s3 ./destination_s3

# Runtime dependencies only (no test extras); drop the in-tree build leftovers; add the
# unprivileged user the connector runs as (named airbyte, referenced by uid:gid below).
RUN pip install --no-cache-dir . \
    && rm -rf build destination_s3.egg-info \
    && useradd --create-home --uid 1000 --user-group airbyte

USER 1000:1000

ENV AIRBYTE_ENTRYPOINT="python /airbyte/integration_code/main.py"
ENTRYPOINT ["python", "/airbyte/integration_code/main.py"]

LABEL io.airbyte.name=tarsal/destination-s3 \
      io.airbyte.version=0.1.0
