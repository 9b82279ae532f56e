# destination-s3: Airbyte-protocol destination writing JSONL, CSV or Parquet files to Amazon S3.
# Conventions: https://docs.airbyte.com/connector-development/ (WORKDIR, AIRBYTE_ENTRYPOINT, labels).
#
# Two stages. `build` has gcc and compiles the connector's C row encoder
# (destination_s3/_speedups.c) while installing the package and its runtime dependencies under
# /install; the runtime image copies /install into its /usr/local and has no compiler.

FROM python:3.11.7-slim-bookworm AS build

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /airbyte/integration_code

# gcc and the C library headers only (the Python headers are in the base image). Not pinned:
# Debian's security updates replace these versions within bookworm, and a pin would break builds.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*

# Only what the install needs. The top-level spec.json is a symlink into the package, whose copy
# (destination_s3/spec.json) is the one the connector loads, so it is not copied separately.
COPY setup.py ./
COPY destination_s3 ./destination_s3

# Runtime dependencies only (no test extras), under the prefix the runtime stage copies.
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11.7-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /airbyte/integration_code

COPY --from=build /install /usr/local
COPY main.py ./

# The unprivileged user the connector runs as (named airbyte, referenced by uid:gid below).
RUN useradd --create-home --uid 1000 --user-group airbyte

USER 1000:1000

ENV AIRBYTE_ENTRYPOINT="python /airbyte/integration_code/main.py"
ENTRYPOINT ["python", "/airbyte/integration_code/main.py"]

LABEL io.airbyte.name=tarsal/destination-s3 \
      io.airbyte.version=0.1.0
