from collections.abc import Callable, Mapping, Sequence
from typing import Any

class CsvRowEncoder:
    def __init__(
        self, columns: Sequence[str], fallback: Callable[[bytes, bytes, bytes], bytes]
    ) -> None: ...
    def __call__(self, ab_id: bytes, emitted_at: bytes, data: bytes) -> bytes: ...

class UuidIds:
    def __init__(self, random_bytes: Callable[[int], bytes]) -> None: ...
    def __call__(self) -> bytes: ...

def take_plain_records(
    envelopes: list[Any],
    start: int,
    routes: Mapping[Any, Any],
    pending: list[Any],
    next_id: Callable[[], bytes],
    record_number: int,
    last_emitted_at: int | float | None,
    emitted_at_text: bytes,
) -> tuple[int, int, int, int | float | None, bytes]: ...
def scan_plain_records(
    block: bytes,
    start: int,
    routes: Mapping[Any, Any],
    pending: list[Any],
    next_id: Callable[[], bytes],
    record_number: int,
    last_emitted_at: int | float | None,
    emitted_at_text: bytes,
) -> tuple[int, int, int | float | None, bytes]: ...
def is_valid_utf8(data: bytes | bytearray | memoryview) -> bool: ...
def encode_jsonl(ab_id: bytes, emitted_at: bytes, data: bytes) -> bytes: ...
def count_newlines(data: bytes | bytearray | memoryview) -> int: ...
def encode_csv_no_flattening(ab_id: bytes, emitted_at: bytes, data: bytes) -> bytes: ...
