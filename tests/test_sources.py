"""The ranged-source protocol through the WSGI middleware: exactly the ranges asked for."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from inprocess import call
from support import parse_multipart

from rangewsgi import RangeMiddleware
from rangewsgi.files import TruncatedBody
from rangewsgi.sources import RangedSource, is_ranged_source

DATA = bytes((i * 13) % 251 for i in range(50_000))


class MemorySource:
    """A ranged source over bytes that records every call made to it."""

    def __init__(self, data: bytes, etag: str | None = None, extra: bytes = b"",
                 short: int = 0) -> None:
        self.data = data
        self.size = len(data)
        self.etag = etag
        self.last_modified: str | None = None
        self.calls: list[tuple[int, int]] = []
        self.iterated = 0
        self.closes = 0
        self.extra = extra
        self.short = short

    def read_range(self, start: int, stop: int) -> Iterable[bytes]:
        self.calls.append((start, stop))
        body = self.data[start:stop - self.short] + self.extra
        return [body[i:i + 1000] for i in range(0, len(body), 1000)]

    def __iter__(self) -> Iterator[bytes]:
        self.iterated += 1
        yield from (self.data[i:i + 4096] for i in range(0, self.size, 4096))

    def close(self) -> None:
        self.closes += 1


def app_for(source: Any, headers: list[tuple[str, str]] | None = None) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "video/mp4"), *(headers or [])])
        return source

    return RangeMiddleware(app)


def test_protocol_is_recognised() -> None:
    source = MemorySource(DATA)
    assert is_ranged_source(source) and isinstance(source, RangedSource)
    assert not is_ranged_source([b"x"]) and not is_ranged_source(object())


def test_full_200_reads_the_source_once() -> None:
    source = MemorySource(DATA)
    result = call(app_for(source), "GET")
    assert result.code == 200 and result.body == DATA
    assert result.header("Content-Length") == str(len(DATA))
    assert source.iterated == 1 and source.calls == [] and source.closes == 1


def test_one_call_per_part_in_the_order_sent() -> None:
    source = MemorySource(DATA)
    result = call(app_for(source), "GET", {"Range": "bytes=40000-40099,0-9,-5"})
    assert result.code == 206
    parts = parse_multipart(result.body, result.header("Content-Type") or "")
    assert [body for _, body in parts] == [DATA[40000:40100], DATA[:10], DATA[-5:]]
    assert source.calls == [(40000, 40100), (0, 10), (len(DATA) - 5, len(DATA))]
    assert source.iterated == 0 and source.closes == 1


def test_single_range() -> None:
    source = MemorySource(DATA)
    result = call(app_for(source), "GET", {"Range": "bytes=-100"})
    assert result.code == 206 and result.body == DATA[-100:]
    assert source.calls == [(len(DATA) - 100, len(DATA))]


def test_validators_come_from_the_source() -> None:
    source = MemorySource(DATA, etag='"abc"')
    result = call(app_for(source), "GET", {"Range": "bytes=0-9", "If-Range": '"abc"'})
    assert result.code == 206 and result.header("ETag") == '"abc"'
    stale = call(app_for(MemorySource(DATA, etag='"new"')), "GET",
                 {"Range": "bytes=0-9", "If-Range": '"abc"'})
    assert stale.code == 200 and stale.body == DATA
    unchanged = call(app_for(MemorySource(DATA, etag='"abc"')), "GET",
                     {"If-None-Match": '"abc"'})
    assert unchanged.code == 304 and unchanged.body == b""


def test_a_source_that_gives_more_or_less_aborts() -> None:
    for source in (MemorySource(DATA, extra=b"!"), MemorySource(DATA, short=1)):
        app = app_for(source)
        body = app({"REQUEST_METHOD": "GET", "HTTP_RANGE": "bytes=10-19"},
                   lambda *a: None)
        with pytest.raises(TruncatedBody):
            b"".join(body)
        body.close()  # type: ignore[attr-defined]
        assert source.closes == 1


def test_content_length_that_disagrees_passes_through() -> None:
    source = MemorySource(DATA)
    result = call(app_for(source, [("Content-Length", str(len(DATA) - 1))]), "GET",
                  {"Range": "bytes=0-9"}, validate=False)
    assert result.code == 200 and result.header("Content-Range") is None
