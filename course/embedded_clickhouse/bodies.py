"""Request bodies: decoding `Content-Encoding` incrementally, so an INSERT of any size streams.

clickhouse-connect sends one lz4 frame per block, so every decoder here keeps going across
frame (or gzip member) boundaries; decoding only the first would silently drop rows. A body
that ends inside a frame is an error, never a short insert.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Callable

import lz4.frame
import zstandard


class BodyError(Exception):
    """The body cannot be decoded; `error_name` is the ClickHouse error to report."""

    def __init__(self, error_name: str, message: str) -> None:
        super().__init__(message)
        self.error_name = error_name


class _Decoder:
    """Decode a sequence of concatenated frames made by `new_frame()`."""

    error_name = "CANNOT_DECOMPRESS"

    def __init__(self) -> None:
        self._frame = self.new_frame()
        self._in_frame = False

    def new_frame(self):  # pragma: no cover - overridden
        raise NotImplementedError

    def feed(self, data: bytes) -> bytes:
        out = []
        while data:
            try:
                out.append(self._frame.decompress(data))
            except Exception as exc:  # each library has its own error type
                raise BodyError(self.error_name, f"Cannot decompress request body: {exc}") from exc
            self._in_frame = True
            if not self._frame.eof:
                break
            data = self._frame.unused_data
            self._frame = self.new_frame()
            self._in_frame = False
        return b"".join(out)

    def finish(self) -> None:
        if self._in_frame:
            raise BodyError(self.error_name,
                            "Request body ends in the middle of a compressed frame")


class _Lz4(_Decoder):
    error_name = "LZ4_DECODER_FAILED"

    def new_frame(self):
        return lz4.frame.LZ4FrameDecompressor()


class _Zstd(_Decoder):
    error_name = "ZSTD_DECODER_FAILED"

    def new_frame(self):
        return _ZstdFrame()


class _ZstdFrame:
    """zstandard's decompressobj exposes no `unused_data`/`eof` pair; adapt it to the others."""

    def __init__(self) -> None:
        self._obj = zstandard.ZstdDecompressor().decompressobj()

    def decompress(self, data: bytes) -> bytes:
        return self._obj.decompress(data)

    @property
    def eof(self) -> bool:
        return self._obj.eof

    @property
    def unused_data(self) -> bytes:
        return self._obj.unused_data


class _Zlib(_Decoder):
    error_name = "ZLIB_INFLATE_FAILED"

    def __init__(self, wbits: int) -> None:
        self._wbits = wbits
        super().__init__()

    def new_frame(self):
        return zlib.decompressobj(wbits=self._wbits)


_DECODERS: dict[str, Callable[[], _Decoder]] = {
    "lz4": _Lz4,
    "zstd": _Zstd,
    "gzip": lambda: _Zlib(16 + zlib.MAX_WBITS),
    "x-gzip": lambda: _Zlib(16 + zlib.MAX_WBITS),
    "deflate": lambda: _Zlib(zlib.MAX_WBITS),
}


def supported_encodings() -> list[str]:
    return sorted(_DECODERS)


async def decoded(chunks: AsyncIterator[bytes], encoding: str | None) -> AsyncIterator[bytes]:
    """Yield the body's bytes, decoded per its Content-Encoding ('' or None: as is)."""
    encoding = (encoding or "").strip().lower()
    if encoding in ("", "identity", "none"):
        async for chunk in chunks:
            if chunk:
                yield chunk
        return
    factory = _DECODERS.get(encoding)
    if factory is None:
        # As ClickHouse's chooseCompressionMethod(): NOT_IMPLEMENTED (HTTP 501).
        raise BodyError(
            "NOT_IMPLEMENTED",
            f"Unknown compression method '{encoding}'. Only 'none', "
            + ", ".join(f"'{name}'" for name in supported_encodings())
            + " are supported as compression methods",
        )
    decoder = factory()
    async for chunk in chunks:
        out = decoder.feed(chunk)
        if out:
            yield out
    decoder.finish()
