from collections.abc import Callable, Sequence

class CsvRowEncoder:
    def __init__(
        self, columns: Sequence[str], fallback: Callable[[bytes, bytes, bytes], bytes]
    ) -> None: ...
    def __call__(self, ab_id: bytes, emitted_at: bytes, data: bytes) -> bytes: ...
