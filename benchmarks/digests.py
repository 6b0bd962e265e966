"""What ``file_validators="content"`` costs: the first request of a file version (one reading
of the whole file for its SHA-256), the same request once the digest is known (in memory, or
from the file's extended attribute as another worker process finds it), and the cost it
adds to a request it only passes on, against ``file_validators=True``, side by side.

    python benchmarks/digests.py          # 256 MiB (real bytes) and 4 GiB (sparse) files
    python benchmarks/digests.py --quick  # 8 MiB and 64 MiB, a few seconds

In process, WSGI (gunicorn's file wrapper, bodies sent to /dev/null) and ASGI (the path-send
extension offered, as Granian does; the digest is computed in a worker thread). Requests are
``HEAD``: what a revalidating CDN or a download manager's probe costs. Every answer is checked
(status, ``ETag``, ``Repr-Digest`` against ``hashlib``) before anything is timed; no timing is
asserted. The 4 GiB file is sparse: reading it costs no disk I/O, hashing it costs the same
CPU as real bytes; the 256 MiB file is written with real bytes and read from the page cache
(the cost of a first request on a cold cache adds the disk's read time).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import BenchError, MiB, Sink, base_environ, load_average
from rangewsgi import RangeMiddleware, digests
from rangewsgi.asgi import RangeMiddleware as ASGIRangeMiddleware
from rangewsgi.digest_fields import format_repr_digest

Message = dict[str, Any]
ASGIApp = Callable[[dict[str, Any], Callable[[], Awaitable[Message]],
                    Callable[[Message], Awaitable[None]]], Awaitable[None]]
OLD_NS = 1_600_000_000 * 10**9  # settled: the digest of such a version is kept


def wsgi_file_app(path: Path) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        file = open(path, "rb")  # noqa: SIM115 - closed by the server through the wrapper
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        wrapper: Callable[..., Iterable[bytes]] = environ["wsgi.file_wrapper"]
        return wrapper(file, 1 << 16)

    return app


def asgi_file_app(path: Path) -> ASGIApp:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream")]})
        await send({"type": "http.response.pathsend", "path": str(path)})

    return app


def asgi_scope(method: str) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1", "method": method, "scheme": "http", "path": "/file.bin",
            "raw_path": b"/file.bin", "query_string": b"", "root_path": "",
            "headers": [(b"host", b"127.0.0.1:8000")], "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000), "extensions": {"http.response.pathsend": {}}}


class Exchange:
    """One request through an app, wsgi or asgi; ``headers`` are the answer's."""

    def __init__(self, interface: str, path: Path, mode: bool | str, method: str) -> None:
        self.interface = interface
        self.method = method
        self.sink = Sink()
        self.loop = asyncio.new_event_loop()
        if interface == "wsgi":
            self.wsgi = RangeMiddleware(wsgi_file_app(path), file_validators=mode)
        else:
            self.asgi = ASGIRangeMiddleware(asgi_file_app(path), file_validators=mode)
        self.status = 0
        self.headers: dict[str, str] = {}

    def close(self) -> None:
        self.sink.close()
        self.loop.close()

    def __call__(self) -> None:
        if self.interface == "wsgi":
            self._wsgi()
        else:
            self.loop.run_until_complete(self._asgi())

    def _wsgi(self) -> None:
        environ = base_environ("/file.bin")
        environ["REQUEST_METHOD"] = self.method
        seen: dict[str, Any] = {}

        def app(env: dict[str, Any], server_start: Callable[..., Any]) -> Iterable[bytes]:
            def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                seen["status"], seen["headers"] = status, headers
                return server_start(status, headers, exc_info)

            return self.wsgi(env, start)

        self.sink.run(app, environ)
        self.status = int(seen["status"].split()[0])
        self.headers = {k.lower(): v for k, v in seen["headers"]}

    async def _asgi(self) -> None:
        asked = False

        async def receive() -> Message:
            nonlocal asked
            if not asked:
                asked = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.get_running_loop().create_future()
            raise AssertionError("unreachable")

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.status = message["status"]
                self.headers = {k.decode().lower(): v.decode() for k, v in message["headers"]}

        await self.asgi(asgi_scope(self.method), receive, send)


def make_file(path: Path, size: int, sparse: bool) -> bytes:
    """Write the file (real bytes, or a hole of ``size``) with a settled mtime; its SHA-256."""
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        if sparse:
            out.truncate(size)
            block = bytes(MiB)
            for _ in range(size // MiB):
                digest.update(block)
            digest.update(bytes(size % MiB))
        else:
            left = size
            while left:
                block = os.urandom(min(MiB, left))
                out.write(block)
                digest.update(block)
                left -= len(block)
    os.utime(path, ns=(OLD_NS, OLD_NS))
    return digest.digest()


def forget(path: Path, keep_xattr: bool) -> None:
    """Make the next request a first one: nothing in memory (and no attribute)."""
    digests.CACHE.clear()
    if not keep_xattr:
        with contextlib.suppress(OSError):  # absent already, or no attributes here
            os.removexattr(path, digests.XATTR_NAME)


def check(exchange: Exchange, sha256: bytes) -> None:
    exchange()
    expected = format_repr_digest([("sha-256", sha256)])
    if exchange.status != 200 or exchange.headers.get("repr-digest") != expected:
        raise BenchError(f"{exchange.interface}: {exchange.status} {exchange.headers}")
    if exchange.headers.get("etag") != digests.etag_for(sha256):
        raise BenchError(f"{exchange.interface}: ETag {exchange.headers.get('etag')}")


def timed(call: Callable[[], None], before: Callable[[], None] | None = None) -> float:
    if before is not None:
        before()
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def first_and_cached(path: Path, sha256: bytes, rounds: int, cached_runs: int,
                     ) -> list[tuple[str, float, float, float]]:
    """Per interface: (interface, first, attribute hit, memory hit) medians in seconds."""
    rows = []
    for interface in ("wsgi", "asgi"):
        exchange = Exchange(interface, path, "content", "HEAD")
        try:
            forget(path, keep_xattr=False)
            check(exchange, sha256)
            first = statistics.median(timed(exchange, lambda: forget(path, False))
                                      for _ in range(rounds))
            stored = statistics.median(timed(exchange, lambda: forget(path, True))
                                       for _ in range(rounds))
            exchange()
            hit = statistics.median(timed(exchange) for _ in range(cached_runs))
            check(exchange, sha256)
        finally:
            exchange.close()
        rows.append((interface, first, stored, hit))
    return rows


def pass_through(path: Path, rounds: int, batch: int) -> list[tuple[str, float, float]]:
    """Per interface: median seconds per GET 200 with True and with "content" (cached),
    batches alternating so that both see the same machine."""
    rows = []
    for interface in ("wsgi", "asgi"):
        modes = {"True": Exchange(interface, path, True, "GET"),
                 '"content"': Exchange(interface, path, "content", "GET")}
        try:
            for exchange in modes.values():
                exchange()  # warm: the content digest is computed here, once
                if exchange.status != 200:
                    raise BenchError(f"{interface}: {exchange.status}")
            samples: dict[str, list[float]] = {name: [] for name in modes}
            for _ in range(rounds):
                for name, exchange in modes.items():
                    start = time.perf_counter()
                    for _ in range(batch):
                        exchange()
                    samples[name].append((time.perf_counter() - start) / batch)
        finally:
            for exchange in modes.values():
                exchange.close()
        rows.append((interface, statistics.median(samples["True"]),
                     statistics.median(samples['"content"'])))
    return rows


def human(size: int) -> str:
    return f"{size // MiB} MiB" if size < 1024 * MiB else f"{size // (1024 * MiB)} GiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small files, few rounds")
    args = parser.parse_args()
    sizes = [(8 * MiB, False), (64 * MiB, True)] if args.quick else [
        (256 * MiB, False), (4096 * MiB, True)]
    rounds, cached_runs = (3, 50) if args.quick else (3, 200)
    print(f"load average before: {load_average()}")
    print()
    print("| file | interface | first HEAD | from the xattr | cached HEAD | cached / first |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="rangewsgi-digests-") as work:
        for size, sparse in sizes:
            path = Path(work) / f"file-{size}.bin"
            sha256 = make_file(path, size, sparse)
            label = human(size) + (" (sparse)" if sparse else "")
            for interface, first, stored, hit in first_and_cached(path, sha256, rounds,
                                                                  cached_runs):
                print(f"| {label} | {interface} | {first * 1e3:.1f} ms | "
                      f"{stored * 1e6:.0f} µs | {hit * 1e6:.0f} µs | {hit / first:.5f} |")
            path.unlink()
        small = Path(work) / "small.bin"
        make_file(small, 64 * 1024, sparse=False)
        print()
        print("| pass-through GET 200, 64 KiB file | True | \"content\" (cached) | ratio |")
        print("|---|---|---|---|")
        for interface, plain, content in pass_through(small, 7 if args.quick else 15,
                                                      200 if args.quick else 1000):
            print(f"| {interface} | {plain * 1e6:.1f} µs | {content * 1e6:.1f} µs | "
                  f"{content / plain:.2f} |")
    print()
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
