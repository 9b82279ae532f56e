"""Tarsal's S3 destination: an Airbyte-protocol connector writing JSONL or CSV files to S3."""
