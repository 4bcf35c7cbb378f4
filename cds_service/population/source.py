"""NDJSON files of a Bulk Data export, cut into chunks that workers read independently.

A plain file is cut at byte offsets, each chunk extended to the next newline, so any worker can read any
chunk with one seek; a gzip file is one chunk, read as a stream. Either way a chunk is handed out in
blocks of whole lines of bounded size: memory does not grow with the export.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CHUNK_BYTES = 32 * 1024 * 1024
BLOCK_BYTES = 4 * 1024 * 1024
SUFFIXES = (".ndjson", ".ndjson.gz")


@dataclass(frozen=True)
class Chunk:
    index: int
    path: str
    start: int  # byte offsets in the (uncompressed) file; gzip files are one chunk: 0, -1
    end: int

    @property
    def compressed(self) -> bool:
        return self.path.endswith(".gz")


class SourceError(ValueError):
    """The source cannot be read (the message says why)."""


def ndjson_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise SourceError(f"{folder} is not a folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(SUFFIXES))
    if not files:
        raise SourceError(f"{folder} holds no .ndjson or .ndjson.gz files")
    return files


def plan_chunks(files: list[Path], chunk_bytes: int = CHUNK_BYTES) -> list[Chunk]:
    chunks: list[Chunk] = []
    for path in files:
        if path.name.endswith(".gz"):
            chunks.append(Chunk(len(chunks), str(path), 0, -1))
            continue
        size = path.stat().st_size
        for start in range(0, max(size, 1), chunk_bytes):
            chunks.append(Chunk(len(chunks), str(path), start, min(start + chunk_bytes, size)))
    return chunks


def read_blocks(chunk: Chunk, block_bytes: int = BLOCK_BYTES) -> Iterator[bytes]:
    """The chunk's lines, in blocks that end on a newline (a line belongs to the chunk it starts in)."""
    if chunk.compressed:
        yield from _gzip_blocks(chunk.path, block_bytes)
        return
    with open(chunk.path, "rb") as stream:
        position = chunk.start
        if position > 0:
            stream.seek(position - 1)
            if stream.read(1) != b"\n":
                position += len(stream.readline())  # the partial line belongs to the previous chunk
        stream.seek(position)
        while position < chunk.end:
            block = stream.read(min(block_bytes, chunk.end - position))
            if not block:
                return
            position += len(block)
            if not block.endswith(b"\n"):
                rest = stream.readline()  # finish the last line, even past the chunk's end
                block += rest
                position += len(rest)
            yield block


def _gzip_blocks(path: str, block_bytes: int) -> Iterator[bytes]:
    try:
        with gzip.open(path, "rb") as stream:
            carry = b""
            while True:
                data = stream.read(block_bytes)
                if not data:
                    break
                data = carry + data
                cut = data.rfind(b"\n")
                if cut < 0:
                    carry = data
                    continue
                carry = data[cut + 1 :]
                yield data[: cut + 1]
            if carry.strip():
                yield carry
    except (OSError, EOFError, zlib.error) as error:
        raise SourceError(f"{Path(path).name}: not a readable gzip file ({error})") from error
