"""End-to-end benchmark of the connector's `write` command against a local moto S3 server.

Run with `python -m benchmarks --help`; see benchmarks/README.md for what each column means.
"""
