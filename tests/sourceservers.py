"""Upstreams for the ranged-source adapters: real servers on loopback, started by the tests.

- ``start_upstream()``: a small HTTP/1.1 upstream (``http.server``, run in a subprocess by
  ``python tests/sourceservers.py upstream PORT``) that misbehaves on request. The last path
  segment names its faults before a dot, joined by ``+``, each optionally ``@N`` (from the
  N-th GET of that path on): ``/media/fail@2+weak.token``. It also speaks enough of S3's
  path-style API for boto3 (``HEAD``/``GET /bucket/key``). ``/_stats`` reports the open
  connections (the stats request itself not counted) and the GETs per path.
- ``start_moto()``: moto's S3 server, each request it answers recorded by us (``moto_requests``).
- ``start_nginx()``: Debian's nginx serving a directory, its own config in a temp dir.
- ``start_proxy()``: a TCP proxy that counts connections and bytes each way (``proxy_stats``).
- ``serve_wsgi()``: a WSGI app on a werkzeug server in a thread; ``fetch()`` reads one answer
  and says whether it arrived whole (a response cut after its headers is not an error here).
- ``client_sockets(port)``: sockets of this machine connected to ``port`` (not yet closed by
  their owner), from ``/proc/net/tcp``: what a leak leaves behind.

Faults of the upstream (``N`` defaults to 1):

=============  ================================================================================
``missing``    404 to HEAD and GET
``down``       503 to HEAD and GET
``nohead``     405 to HEAD (the size comes from a ranged GET)
``hanghead``   HEAD waits ``STALL`` seconds before answering
``weak``       a weak ETag; ``noetag``: none; ``nodate``: no Last-Modified
``deaf``       ignores If-Match, If-Unmodified-Since and If-Range
``flip@N``     the resource is replaced (same size, other bytes, new validators) at GET N
``fail@N``     500 to GET N and later
``reset@N``    headers and half the body, then a TCP reset
``short@N``    headers (full Content-Length) and half the body, then a clean close
``stall@N``    headers and half the body, then ``STALL`` seconds of silence
``hang@N``     ``STALL`` seconds of silence before the headers
``ignore@N``   ignores Range: 200 and the whole body
``long@N``     chunked, with 7 bytes more than the range
``wrong@N``    206 for the range one byte later than asked
``shrunk``     HEAD announces ``SHRINK`` bytes more than the GETs have
=============  ================================================================================
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from server_configs.launch import shared_dir
from support import HOST, Server, free_port, start_server

HERE = Path(__file__).resolve().parent
SIZE = 300_007
SHRINK = 1000
STALL = 3.0
BUCKET = "media"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing",
               "region_name": "us-east-1"}


def versions(size: int = SIZE) -> tuple[bytes, bytes]:
    """Two versions of one resource: same size, different bytes everywhere."""
    from server_configs.launch import make_data

    first = make_data(size, seed=110)
    return first, bytes(b ^ 0x5A for b in first)


# -- the misbehaving upstream (runs in its own process) --


@dataclass
class _PathState:
    gets: int = 0
    heads: int = 0
    version: int = 0


@dataclass
class _Upstream:
    data: tuple[bytes, bytes]
    lock: threading.Lock = field(default_factory=threading.Lock)
    paths: dict[str, _PathState] = field(default_factory=dict)
    open: int = 0


def _faults(path: str) -> dict[str, int]:
    name = path.rstrip("/").rsplit("/", 1)[-1].split(".", 1)[0]
    faults = {}
    for item in name.split("+"):
        fault, _, at = item.partition("@")
        faults[fault] = int(at) if at.isdigit() else 1
    return faults


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def do_GET(self) -> None:
        if self.path.startswith("/_stats"):
            self._stats()
            return
        self._answer(head=False)

    def _stats(self) -> None:
        up = self.server.upstream
        with up.lock:
            body = json.dumps({"open": up.open - 1,
                               "gets": {p: s.gets for p, s in up.paths.items()},
                               "heads": {p: s.heads for p, s in up.paths.items()}}).encode()
        self._send(200, {"Content-Type": "application/json", "Connection": "close"}, body)
        self.close_connection = True

    def _send(self, status: int, headers: Mapping[str, str], body: bytes = b"") -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _answer(self, head: bool) -> None:
        up = self.server.upstream
        path = unquote(self.path.split("?", 1)[0])
        faults = _faults(path)
        with up.lock:
            state = up.paths.setdefault(path, _PathState())
            if head:
                state.heads += 1
            else:
                state.gets += 1
                if "flip" in faults and state.gets >= faults["flip"]:
                    state.version = 1
            number, version = state.gets, state.version

        def active(fault: str) -> bool:
            return fault in faults and not head and number >= faults[fault]

        if "missing" in faults or "down" in faults:
            status = 404 if "missing" in faults else 503
            self._send(status, {"Content-Length": "0"})
            return
        if head and "nohead" in faults:
            self._send(405, {"Content-Length": "0", "Allow": "GET"})
            return
        if (head and "hanghead" in faults) or active("hang"):
            time.sleep(STALL)
        if active("fail"):
            body = b"upstream failure\n"
            self._send(500, {"Content-Length": str(len(body))}, body)
            return
        data = up.data[version]
        announced = len(data)
        if "shrunk" in faults:
            data = data[:-SHRINK]
        tag = f'"v{version}-{len(data)}"'
        etag = None if "noetag" in faults else ("W/" + tag if "weak" in faults else tag)
        modified = None if "nodate" in faults else formatdate(1_600_000_000 + version * 3600,
                                                              usegmt=True)
        base = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
        if etag:
            base["ETag"] = etag
        if modified:
            base["Last-Modified"] = modified
        if head:
            self._send(200, {**base, "Content-Length": str(announced)})
            return
        if "deaf" not in faults and not self._preconditions_hold(etag, modified):
            self._send(412, {"Content-Length": "0"})
            return
        spec = self.headers.get("Range")
        if spec and "deaf" not in faults and not self._if_range_holds(etag, modified):
            spec = None
        if active("ignore"):
            spec = None
        if spec is None:
            self._body(200, base, data, 0, len(data), active)
            return
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", spec.strip())
        if match is None or (not match[1] and not match[2]):
            self._body(200, base, data, 0, len(data), active)
            return
        if match[1]:
            first = int(match[1])
            last = min(int(match[2]), len(data) - 1) if match[2] else len(data) - 1
        else:
            first, last = max(0, len(data) - int(match[2])), len(data) - 1
        if first >= len(data) or first > last:
            self._send(416, {"Content-Range": f"bytes */{len(data)}", "Content-Length": "0"})
            return
        if active("wrong"):
            first, last = first + 1, min(last + 1, len(data) - 1)
        headers = {**base, "Content-Range": f"bytes {first}-{last}/{len(data)}"}
        self._body(206, headers, data, first, last + 1, active)

    def _preconditions_hold(self, etag: str | None, modified: str | None) -> bool:
        if_match = self.headers.get("If-Match")
        if if_match is not None and if_match.strip() != "*":
            strong = etag if etag and not etag.startswith("W/") else None
            if strong is None or strong not in [t.strip() for t in if_match.split(",")]:
                return False
        since = self.headers.get("If-Unmodified-Since")
        return since is None or if_match is not None or modified == since.strip()

    def _if_range_holds(self, etag: str | None, modified: str | None) -> bool:
        value = self.headers.get("If-Range")
        if value is None:
            return True
        value = value.strip()
        if value.startswith('"'):
            return etag == value
        return modified == value

    def _body(self, status: int, headers: dict[str, str], data: bytes, start: int, stop: int,
              active: Callable[[str], bool]) -> None:
        body = data[start:stop]
        if active("long"):
            self._send(status, {**headers, "Transfer-Encoding": "chunked"})
            extra = body + b"EXTRA!!"
            for i in range(0, len(extra), 8192):
                piece = extra[i:i + 8192]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
            return
        self._send(status, {**headers, "Content-Length": str(len(body))})
        if not (active("reset") or active("short") or active("stall")):
            self.wfile.write(body)
            return
        self.wfile.write(body[:len(body) // 2])
        self.wfile.flush()
        self.close_connection = True
        if active("stall"):
            time.sleep(STALL)
            return
        time.sleep(0.05)
        if active("reset"):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        elif active("short"):
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        self.connection.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    upstream: _Upstream

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.upstream.lock:
            self.upstream.open += 1
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.upstream.lock:
            self.upstream.open -= 1
        super().shutdown_request(request)


def run_upstream(port: int) -> None:
    server = _Server((HOST, port), _Handler)
    server.upstream = _Upstream(versions())
    server.serve_forever()


# -- the counting TCP proxy (runs in its own process) --


@dataclass
class _Counts:
    lock: threading.Lock = field(default_factory=threading.Lock)
    connections: int = 0
    open: int = 0
    down: int = 0  # upstream -> client
    up: int = 0  # client -> upstream


def _pump(source: socket.socket, sink: socket.socket, counts: _Counts, downstream: bool) -> None:
    try:
        while data := source.recv(1 << 18):
            sink.sendall(data)
            with counts.lock:
                if downstream:
                    counts.down += len(data)
                else:
                    counts.up += len(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def _relay(client: socket.socket, target: int, counts: _Counts) -> None:
    try:
        upstream = socket.create_connection((HOST, target))
    except OSError:
        client.close()
        return
    with counts.lock:
        counts.connections += 1
        counts.open += 1
    back = threading.Thread(target=_pump, args=(upstream, client, counts, True), daemon=True)
    back.start()
    _pump(client, upstream, counts, False)
    back.join()
    client.close()
    upstream.close()
    with counts.lock:
        counts.open -= 1


def run_proxy(port: int, target: int, control: int) -> None:
    counts = _Counts()

    def controller() -> None:
        with socket.create_server((HOST, control)) as listener:
            while True:
                conn, _ = listener.accept()
                with conn:
                    command = conn.recv(64).strip()
                    with counts.lock:
                        if command == b"reset":
                            counts.connections = counts.down = counts.up = 0
                        stats = {"connections": counts.connections, "open": counts.open,
                                 "down": counts.down, "up": counts.up}
                    conn.sendall(json.dumps(stats).encode())

    threading.Thread(target=controller, daemon=True).start()
    with socket.create_server((HOST, port)) as listener:
        while True:
            client, _ = listener.accept()
            threading.Thread(target=_relay, args=(client, target, counts), daemon=True).start()


# -- starting them from the tests --


def start_upstream(workdir: Path) -> Server:
    port = free_port()
    return start_server([sys.executable, str(Path(__file__)), "upstream", str(port)], port,
                        cwd=workdir, log_path=workdir / "upstream.log")


def upstream_stats(port: int) -> dict[str, Any]:
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall(b"GET /_stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw = b""
        while data := sock.recv(65536):
            raw += data
    stats: dict[str, Any] = json.loads(raw.partition(b"\r\n\r\n")[2])
    return stats


@dataclass
class Proxy:
    server: Server
    port: int
    control: int

    def stats(self, command: bytes = b"stats") -> dict[str, int]:
        with socket.create_connection((HOST, self.control), timeout=10) as sock:
            sock.sendall(command + b"\n")
            raw = b""
            while data := sock.recv(65536):
                raw += data
        stats: dict[str, int] = json.loads(raw)
        return stats

    def reset(self) -> None:
        self.stats(b"reset")


def start_proxy(target: int, workdir: Path) -> Proxy:
    port, control = free_port(), free_port()
    server = start_server([sys.executable, str(Path(__file__)), "proxy", str(port), str(target),
                           str(control)], port, cwd=workdir, log_path=workdir / "proxy.log")
    return Proxy(server, port, control)


def start_moto(workdir: Path) -> Server:
    """moto's S3 app (``moto[server]``) on werkzeug's threaded server, as ``moto_server`` runs
    it, behind a recorder of ours: every request's method, path and status go to
    ``requests.jsonl`` in ``workdir`` (``moto_requests``), whatever moto itself logs.
    In CI its absence fails."""
    import importlib.util

    from server_configs.launch import require

    found = all(importlib.util.find_spec(m) is not None for m in ("moto", "flask", "flask_cors"))
    require("moto", "moto[server] (pip install 'moto[server]')", found)
    port = free_port()
    record = workdir / "requests.jsonl"
    server = start_server([sys.executable, str(Path(__file__)), "moto", str(port), str(record)],
                          port, cwd=workdir, log_path=workdir / "moto.log", timeout=60)
    server.extra["requests"] = record
    return server


class _RequestRecorder:
    """WSGI middleware: one JSON line per request (method, path, status) appended to a file,
    written when the app starts its response."""

    def __init__(self, app: Any, path: Path) -> None:
        self.app = app
        self.path = path
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        def recording(status: str, headers: Any, exc_info: Any = None) -> Any:
            line = json.dumps({"method": environ["REQUEST_METHOD"],
                               "path": environ.get("PATH_INFO", ""),
                               "status": int(status.split(" ", 1)[0])})
            with self.lock, open(self.path, "a", encoding="utf-8") as out:
                out.write(line + "\n")
            return start_response(status, headers, exc_info)

        return self.app(environ, recording)


def run_moto(port: int, record: Path) -> None:
    from moto.moto_server import werkzeug_app
    from werkzeug.serving import WSGIRequestHandler, run_simple

    os.environ.setdefault("MOTO_PORT", str(port))  # as moto_server sets it
    app = werkzeug_app.DomainDispatcherApplication(werkzeug_app.create_backend_app)
    handler = getattr(werkzeug_app, "MotoRequestHandler", WSGIRequestHandler)
    record.touch()
    run_simple(HOST, port, _RequestRecorder(app, record), threaded=True,
               request_handler=handler)


def moto_requests(moto: Server, bucket: str, key: str) -> list[tuple[str, int]]:
    """(method, status) of every request moto answered for one object, in order."""
    record = moto.extra["requests"]
    assert isinstance(record, Path)
    entries = [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]
    return [(e["method"], e["status"]) for e in entries if e["path"] == f"/{bucket}/{key}"]


NGINX_CONF = """\
@USER@
worker_processes 1;
error_log @DIR@/error.log warn;
pid @DIR@/nginx.pid;
events {
    worker_connections 64;
}
http {
    log_format ranges '$status $body_bytes_sent "$http_range" "$http_if_match" "$request"';
    access_log @DIR@/access.log ranges;
    client_body_temp_path @DIR@/client_body;
    proxy_temp_path @DIR@/proxy_temp;
    fastcgi_temp_path @DIR@/fastcgi_temp;
    uwsgi_temp_path @DIR@/uwsgi_temp;
    scgi_temp_path @DIR@/scgi_temp;
    types {
        application/octet-stream bin;
        video/mp4 mp4;
    }
    default_type application/octet-stream;
    keepalive_timeout 30s;
    server {
        listen 127.0.0.1:@PORT@;
        root @DIR@/www;
        location / {
        }
    }
}
"""

NGINX_LOG = re.compile(r'^(\d{3}) (\d+) "([^"]*)" "([^"]*)" "(\w+) ([^ ]*) HTTP/1\.[01]"$', re.M)


def start_nginx(workdir: Path) -> Server:
    """nginx serving ``workdir/www`` (static files: Range, ETag, If-Match, If-Range)."""
    from server_configs.launch import require

    require("nginx")
    port = free_port()
    (workdir / "www").mkdir(exist_ok=True)
    values = {"@DIR@": str(workdir), "@PORT@": str(port),
              "@USER@": "user root;" if os.geteuid() == 0 else ""}
    conf = NGINX_CONF
    for key, value in values.items():
        conf = conf.replace(key, value)
    (workdir / "nginx.conf").write_text(conf)
    cmd = ["nginx", "-p", str(workdir), "-c", str(workdir / "nginx.conf"),
           "-e", str(workdir / "error.log"), "-g", "daemon off;"]
    return start_server(cmd, port, cwd=workdir, log_path=workdir / "nginx.out")


def nginx_requests(workdir: Path, target: str) -> list[tuple[str, int, str, str]]:
    """(method, status, Range, If-Match) of every request nginx logged for ``target``."""
    path = workdir / "access.log"
    text = path.read_text() if path.exists() else ""
    def field(value: str) -> str:  # nginx logs "-" for a header not sent, \x22 for '"'
        return "" if value == "-" else value.replace("\\x22", '"')

    return [(m[5], int(m[1]), field(m[3]), field(m[4]))
            for m in NGINX_LOG.finditer(text) if m[6] == target]


def wait_until(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``check`` until it is true or ``timeout`` seconds have passed; its last answer."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return check()
        time.sleep(0.02)
    return True


def client_sockets(port: int) -> int:
    """TCP sockets on this machine connected to 127.0.0.1:``port`` and not closed by their
    owner: ESTABLISHED, SYN_SENT or CLOSE_WAIT (a FIN_WAIT or TIME_WAIT one was closed)."""
    count = 0
    target = f"0100007F:{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[2] == target and fields[3] in ("01", "02", "08"):
            count += 1
    return count


# -- serving a WSGI app from the test, and reading answers that may be cut --


@contextlib.contextmanager
def serve_wsgi(app: Any) -> Iterator[int]:
    """``app`` on a threaded werkzeug server on a free port, for the duration."""
    from werkzeug.serving import make_server

    port = free_port()
    server = make_server(HOST, port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@dataclass
class Fetched:
    """One answer read off a socket; ``status`` 0 when the connection closed before one."""

    status: int
    headers: dict[str, str]
    body: bytes
    complete: bool

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def fetch(port: int, target: str, headers: Mapping[str, str] | None = None,
          method: str = "GET", timeout: float = 30.0) -> Fetched:
    """One request on a new connection; the answer as far as it came."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {HOST}:{port}", "Connection: close",
             *(f"{k}: {v}" for k, v in (headers or {}).items())]
    raw = b""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        with contextlib.suppress(ConnectionError):
            while data := sock.recv(1 << 16):
                raw += data
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        return Fetched(0, {}, raw, False)
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in header_lines:
        key, _, value = line.partition(":")
        fields[key.strip().lower()] = value.strip()
    length = fields.get("content-length")
    complete = method == "HEAD" or (length is not None and len(body) == int(length))
    return Fetched(int(status_line.split()[1]), fields, body, complete)


@dataclass
class Outcome:
    """A response produced in-process: what a client would see, and the error, if any."""

    status: str
    headers: list[tuple[str, str]]
    body: bytes  # the chunks produced before the end or the error
    error: BaseException | None

    @property
    def sent_headers(self) -> bool:
        """A server sends the status and headers with the first non-empty chunk."""
        return bool(self.body)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


def run_wsgi(app: Any, target: str = "/", headers: Mapping[str, str] | None = None,
             method: str = "GET") -> Outcome:
    """Call ``app`` like a server would: iterate its body, close it; keep any error."""
    from werkzeug.test import EnvironBuilder

    environ = EnvironBuilder(path=target, method=method, headers=dict(headers or {})
                             ).get_environ()
    started: list[Any] = []

    def start_response(status: str, response_headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Callable[[bytes], None]:
        started[:] = [status, response_headers]
        return lambda data: None

    chunks: list[bytes] = []
    error: BaseException | None = None
    body = app(environ, start_response)
    try:
        for chunk in body:
            chunks.append(chunk)
    except Exception as exc:
        error = exc
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    return Outcome(started[0], started[1], b"".join(chunks), error)


def same_boundary(expected: Outcome, actual: Outcome) -> bytes:
    """``expected``'s body with its multipart boundary (if any) replaced by ``actual``'s."""
    def boundary(outcome: Outcome) -> bytes | None:
        kind = outcome.header("Content-Type") or ""
        found = re.search(r"boundary=([^;\s]+)", kind)
        return found[1].encode() if found else None

    old, new = boundary(expected), boundary(actual)
    if old is None or new is None:
        return expected.body
    return expected.body.replace(old, new)


def load_example(name: str) -> Any:
    """``examples/<name>.py`` as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, HERE.parent / "examples" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str]) -> None:
    if argv[0] == "upstream":
        run_upstream(int(argv[1]))
    elif argv[0] == "proxy":
        run_proxy(int(argv[1]), int(argv[2]), int(argv[3]))
    elif argv[0] == "moto":
        run_moto(int(argv[1]), Path(argv[2]))
    else:
        raise SystemExit(f"unknown server {argv[0]!r}")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main(sys.argv[1:])


@contextlib.contextmanager
def serving(prefix: str, start: Callable[[Path], Server]) -> Iterator[tuple[Server, Path]]:
    """``start(workdir)`` in a fresh shared directory; the server stopped by PID and the
    directory removed afterwards, whatever happens."""
    workdir = shared_dir(prefix)
    try:
        server = start(workdir)
        try:
            yield server, workdir
        finally:
            server.stop(timeout=10)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def check_outcome(outcome: Outcome, expected: Outcome, error: type[Exception] | None,
                  partial: bool) -> None:
    """The answer is whole and exact; or it stops before its headers; or it is cut short
    inside a correct prefix of the exact answer."""
    if error is None:
        assert outcome.error is None, outcome.error
        assert outcome.status == expected.status
        assert outcome.body == same_boundary(expected, outcome)
        return
    assert isinstance(outcome.error, error), outcome.error
    whole = same_boundary(expected, outcome)
    assert whole.startswith(outcome.body) and len(outcome.body) < len(whole)
    if not partial:
        assert not outcome.sent_headers, "an error before any byte must stop the headers"


def source_app(make: Callable[[str], Any]) -> Any:
    """A WSGI app, wrapped in ``RangeMiddleware``, answering each path with the source
    ``make(PATH_INFO)`` builds: 404 when it finds nothing, 502 when the upstream fails."""
    from rangewsgi import RangeMiddleware

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        try:
            source = make(environ["PATH_INFO"])
        except FileNotFoundError:
            start_response("404 Not Found", [("Content-Length", "0")])
            return []
        except OSError:
            start_response("502 Bad Gateway", [("Content-Length", "0")])
            return []
        start_response("200 OK", [("Content-Type", "video/mp4")])
        return source

    return RangeMiddleware(app)
