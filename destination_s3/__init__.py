"""Tarsal's S3 destination: an Airbyte-protocol connector writing JSONL, CSV or Parquet to S3."""
