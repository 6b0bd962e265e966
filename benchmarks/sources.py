"""Ranged sources against skip-streaming: what a range of a big S3 object costs upstream.

    python benchmarks/sources.py                  # 1 GiB object, 5 runs of each case
    python benchmarks/sources.py --size-mib 256 --runs 3

moto's S3 server (``moto[server]``) holds the object, made with a multipart upload; a
counting TCP proxy in front of it (``tests/sourceservers.py``) measures the bytes that leave
the upstream and the connections made to it (moto closes each connection after one answer,
so connections are requests). Each case is one request through ``RangeMiddleware``
in-process, timed from the call to the last byte and checked byte for byte:

- ``S3Source``: ``rangewsgi.sources.s3``, one ``GetObject(Range, IfMatch)`` per part after
  one ``HeadObject``;
- ``StreamingBody``: the app's ``get_object()`` body handed to the middleware with a
  ``Content-Length``; the middleware skips through the stream up to the range (boto3
  iterates a ``StreamingBody`` in 1 KiB chunks);
- ``iter_chunks(1 MiB)``: the same, iterated in 1 MiB chunks (the best a stream can do);
- ``boto3 alone``: the same parts as ranged ``get_object`` calls without the middleware, the
  floor set by the upstream (moto reads its whole stored object for every GetObject, so on
  moto that floor grows with the object; on S3 it does not).

The table gives medians over ``--runs`` runs, all cases side by side in one run. No timing
is asserted; wrong bytes or a wrong status fail the run.

A second table gives the peak memory of a whole ``200`` of the object through an
``S3Source``: under the WSGI middleware (the body iterated as a server would), and as an
ASGI ``SourceResponse`` under ``rangewsgi.asgi.RangeMiddleware`` (the messages consumed as a
server would). Each runs in a fresh process: the peak RSS (``VmHWM``, reset before the
request) over the RSS before it, with a CRC-32 of every byte checked.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchmarks  # noqa: F401  (puts tests/ on the import path)
from benchmarks.common import BenchError, KiB, MiB
from rangewsgi import RangeMiddleware

BUCKET = "bench"
KEY = "big.bin"
PART = 64 * MiB
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing",
               "region_name": "us-east-1"}


class Content:
    """The object's bytes, made part by part from one random block (no two parts alike)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.block = os.urandom(PART)

    def part(self, index: int) -> bytes:
        turn = (index * 7919 * 4099) % PART
        data = self.block[turn:] + self.block[:turn]
        return data[:min(PART, self.size - index * PART)]

    def slice(self, start: int, stop: int) -> bytes:
        out = b""
        for index in range(start // PART, (stop - 1) // PART + 1):
            base = index * PART
            out += self.part(index)[max(start - base, 0):stop - base]
        return out


@dataclass
class Case:
    name: str
    ranges: str
    spans: list[tuple[int, int]]  # (start, stop) of each part, in the order sent
    app: Callable[[dict[str, Any], Any], Any] | None  # None: boto3 alone, no middleware
    client: Any = None


def upload(client: Any, content: Content) -> str:
    """The object, by multipart upload; its ETag."""
    client.create_bucket(Bucket=BUCKET)
    upload_id = client.create_multipart_upload(Bucket=BUCKET, Key=KEY)["UploadId"]
    parts = []
    for index in range(-(-content.size // PART)):
        answer = client.upload_part(Bucket=BUCKET, Key=KEY, UploadId=upload_id,
                                    PartNumber=index + 1, Body=content.part(index))
        parts.append({"PartNumber": index + 1, "ETag": answer["ETag"]})
    done = client.complete_multipart_upload(Bucket=BUCKET, Key=KEY, UploadId=upload_id,
                                            MultipartUpload={"Parts": parts})
    etag: str = done["ETag"]
    return etag


def source_app(client: Any) -> Callable[[dict[str, Any], Any], Any]:
    from rangewsgi.sources.s3 import S3Source

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        source = S3Source(client, BUCKET, KEY, chunk_size=256 * KiB)
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return source

    return app


def stream_app(client: Any, chunk: int | None) -> Callable[[dict[str, Any], Any], Any]:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        answer = client.get_object(Bucket=BUCKET, Key=KEY)
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(answer["ContentLength"])),
                                  ("ETag", answer["ETag"])])
        body = answer["Body"]
        if chunk is None:
            return body
        return _ClosingChunks(body, chunk)

    return app


class _ClosingChunks:
    """``body.iter_chunks(chunk)`` that closes the body when the server closes it."""

    def __init__(self, body: Any, chunk: int) -> None:
        self.body = body
        self.chunk = chunk

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.body.iter_chunks(self.chunk))

    def close(self) -> None:
        self.body.close()


def run_once(app: Any, ranges: str) -> tuple[float, str, list[tuple[str, str]], bytes]:
    """One GET through the middleware, consumed like a server would; seconds and answer."""
    from werkzeug.test import EnvironBuilder

    environ = EnvironBuilder(path=f"/{KEY}", headers={"Range": ranges}).get_environ()
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Any:
        started[:] = [status, headers]
        return lambda data: None

    begin = time.perf_counter()
    body = RangeMiddleware(app)(environ, start_response)
    try:
        out = b"".join(body)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    return time.perf_counter() - begin, started[0], started[1], out


def run_direct(client: Any, spans: list[tuple[int, int]]) -> tuple[float, list[bytes]]:
    """The parts as ranged ``get_object`` calls, without the middleware: moto's own cost."""
    begin = time.perf_counter()
    parts = []
    for start, stop in spans:
        answer = client.get_object(Bucket=BUCKET, Key=KEY, Range=f"bytes={start}-{stop - 1}")
        parts.append(answer["Body"].read())
    return time.perf_counter() - begin, parts


def check(case: Case, content: Content, status: str, headers: list[tuple[str, str]],
          body: bytes | list[bytes]) -> None:
    from support import header_value, parse_multipart

    if not status.startswith("206"):
        raise BenchError(f"{case.name}: {status}")
    expected = [content.slice(start, stop) for start, stop in case.spans]
    if isinstance(body, list):
        got = body
    elif len(case.spans) == 1:
        got = [body]
    else:
        got = [part for _, part in parse_multipart(body, header_value(headers, "Content-Type")
                                                   or "")]
    if got != expected:
        raise BenchError(f"{case.name}: wrong bytes")


def memory_kib(field: str) -> int:
    """``VmRSS`` or ``VmHWM`` (the peak) of this process, in KiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise BenchError(f"no {field} in /proc/self/status")


def whole_wsgi(client: Any) -> tuple[str, int, int]:
    """A whole GET through the WSGI middleware: (status, bytes, CRC-32)."""
    from werkzeug.test import EnvironBuilder

    started: list[str] = []
    body = RangeMiddleware(source_app(client))(
        EnvironBuilder(path=f"/{KEY}").get_environ(),
        lambda status, headers, exc_info=None: started.append(status))
    count, crc = 0, 0
    try:
        for chunk in body:
            count, crc = count + len(chunk), zlib.crc32(chunk, crc)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    return started[0], count, crc


def whole_asgi(client: Any) -> tuple[str, int, int]:
    """A whole GET of a ``SourceResponse`` under the ASGI middleware: (status, bytes, CRC)."""
    from rangewsgi.asgi import RangeMiddleware as ASGIRangeMiddleware
    from rangewsgi.asgi import SourceResponse
    from rangewsgi.sources.s3 import S3Source

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        source = S3Source(client, BUCKET, KEY, chunk_size=256 * KiB)
        await SourceResponse(source)(scope, receive, send)

    got: dict[str, Any] = {"status": "", "count": 0, "crc": 0}
    done = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            got["status"] = str(message["status"])
        body = message.get("body", b"")
        got["count"] += len(body)
        got["crc"] = zlib.crc32(body, got["crc"])
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    scope = {"type": "http", "method": "GET", "path": f"/{KEY}", "headers": [],
             "http_version": "1.1", "asgi": {"version": "3.0", "spec_version": "2.3"}}
    asyncio.run(ASGIRangeMiddleware(app)(scope, receive, send))
    return str(got["status"]), int(got["count"]), int(got["crc"])


def serve_whole(adapter: str, endpoint: str) -> dict[str, Any]:
    """One whole GET in this (fresh) process; its time and peak RSS growth."""
    import boto3  # type: ignore[import-untyped,unused-ignore]
    from botocore.config import Config  # type: ignore[import-untyped,unused-ignore]

    client = boto3.client("s3", endpoint_url=endpoint, **CREDENTIALS,
                          config=Config(s3={"addressing_style": "path"}, read_timeout=600))
    with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
        refs.write("5")  # proc(5): the peak RSS starts again from the current RSS
    before = memory_kib("VmRSS")
    begin = time.perf_counter()
    status, count, crc = (whole_asgi if adapter == "asgi" else whole_wsgi)(client)
    return {"status": status, "bytes": count, "crc": crc,
            "seconds": time.perf_counter() - begin,
            "growth_kib": memory_kib("VmHWM") - before}


def memory_rows(endpoint: str, content: Content) -> list[str]:
    """The whole-200 rows, each in a fresh process, checked against the content's CRC-32."""
    crc = 0
    for index in range(-(-content.size // PART)):
        crc = zlib.crc32(content.part(index), crc)
    rows = []
    for adapter, label in (("wsgi", "WSGI: S3Source body"),
                           ("asgi", "ASGI: SourceResponse(S3Source)")):
        done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--serve-whole",
                               adapter, endpoint], capture_output=True, text=True,
                              timeout=3600, check=False)
        if done.returncode != 0:
            raise BenchError(f"{label}: {done.stderr[-2000:]}")
        result = json.loads(done.stdout)
        if (result["status"][:3], result["bytes"], result["crc"]) != ("200", content.size, crc):
            raise BenchError(f"{label}: wrong answer {result}")
        rows.append(f"| {label}, whole {human(content.size)} | "
                    f"{result['growth_kib'] / 1024:.1f} MiB | {result['seconds']:.1f} s |")
    return rows


def human(count: float) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            return f"{count / size:.2f} {unit}"
    return f"{count:.0f} B"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="object size (MiB)")
    parser.add_argument("--runs", type=int, default=5, help="runs of each case")
    parser.add_argument("--serve-whole", nargs=2, metavar=("ADAPTER", "ENDPOINT"),
                        help=argparse.SUPPRESS)  # the fresh process of a memory row
    args = parser.parse_args(argv)
    if args.serve_whole:
        print(json.dumps(serve_whole(*args.serve_whole)))
        return 0
    import boto3  # type: ignore[import-untyped,unused-ignore]
    from botocore.config import Config  # type: ignore[import-untyped,unused-ignore]
    from sourceservers import moto_requests, start_moto, start_proxy

    size = args.size_mib * MiB + 12345  # not a multiple of anything
    workdir = Path(tempfile.mkdtemp(prefix="rangewsgi-bench-sources-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, workdir, True)
        moto = start_moto(workdir)
        stack.callback(moto.stop)
        proxy = start_proxy(moto.port, workdir)
        stack.callback(proxy.server.stop)
        config = Config(s3={"addressing_style": "path"}, read_timeout=600,
                        retries={"max_attempts": 1})
        direct = boto3.client("s3", endpoint_url=moto.url, config=config, **CREDENTIALS)
        content = Content(size)
        began = time.perf_counter()
        upload(direct, content)
        print(f"uploaded {human(size)} to moto in {time.perf_counter() - began:.1f} s",
              file=sys.stderr, flush=True)
        client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{proxy.port}",
                              config=config, **CREDENTIALS)
        tail = "bytes=-100"
        multi = f"bytes=0-99,{size // 2}-{size // 2 + 99},-100"
        tail_spans = [(size - 100, size)]
        multi_spans = [(0, 100), (size // 2, size // 2 + 100), (size - 100, size)]
        cases = []
        for label, ranges, spans in (("last 100 B", tail, tail_spans),
                                     ("3-part multi-range", multi, multi_spans)):
            cases += [Case(f"boto3 alone: get_object(Range) per part, {label}", ranges, spans,
                           None, client),
                      Case(f"S3Source, {label}", ranges, spans, source_app(client)),
                      Case(f"StreamingBody, {label}", ranges, spans, stream_app(client, None)),
                      Case(f"iter_chunks(1 MiB), {label}", ranges, spans,
                           stream_app(client, MiB))]
        results: dict[str, dict[str, list[float]]] = {c.name: {} for c in cases}
        for _ in range(args.runs):
            for case in cases:
                proxy.reset()
                gets_before = sum(1 for m, _ in moto_requests(moto, BUCKET, KEY) if m == "GET")
                if case.app is None:
                    seconds, parts = run_direct(case.client, case.spans)
                    check(case, content, "206", [], parts)
                else:
                    seconds, status, headers, body = run_once(case.app, case.ranges)
                    check(case, content, status, headers, body)
                # the proxy counts a connection's bytes as they pass: let the last ones land
                stats = proxy.stats()
                time.sleep(0.05)
                stats = proxy.stats()
                gets = sum(1 for m, _ in moto_requests(moto, BUCKET, KEY) if m == "GET")
                row = results[case.name]
                for key, value in (("seconds", seconds), ("down", stats["down"]),
                                   ("up", stats["up"]), ("requests", stats["connections"]),
                                   ("gets", gets - gets_before)):
                    row.setdefault(key, []).append(float(value))
        print(f"\nA range of a {human(size)} object on moto's S3 server (loopback), "
              f"medians of {args.runs} runs:\n")
        print("| case | upstream requests (GET) | bytes from upstream | bytes to upstream "
              "| time |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for case in cases:
            row = results[case.name]
            med = {key: statistics.median(values) for key, values in row.items()}
            print(f"| {case.name} | {med['requests']:.0f} ({med['gets']:.0f}) "
                  f"| {human(med['down'])} | {human(med['up'])} "
                  f"| {med['seconds'] * 1000:.0f} ms |")
        print(f"\nPeak RSS growth of one whole 200 of the {human(size)} object (one run each, "
              "a fresh process):\n")
        print("| case | peak RSS growth | time |")
        print("| --- | ---: | ---: |")
        print("\n".join(memory_rows(moto.url, content)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
