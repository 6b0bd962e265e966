"""The README's first command: ``python -m rangewsgi`` serving a directory or a module:app."""

from __future__ import annotations

import contextlib
import functools
import html
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from media import need_module
from support import HOST, ROOT, RawClient, Server, free_port, start_server

from rangewsgi import RangeMiddleware

DATA = bytes(range(256)) * 1000


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("media")
    (root / "clip.webm").write_bytes(DATA)
    (root / "song.wav").write_bytes(DATA[:1000])
    (root / "sub").mkdir()
    (root / "sub" / "notes.txt").write_bytes(b"hello")
    (root / "apps.py").write_text(
        "def application(environ, start_response):\n"
        "    body = b'0123456789' * 10\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain'),"
        " ('Content-Length', str(len(body)))])\n"
        "    return [body]\n")
    return root


def demo(args: list[str], cwd: Path, log: Path) -> Server:
    port = free_port()
    return start_server([sys.executable, "-m", "rangewsgi", *args, "--port", str(port)], port,
                        cwd=cwd, log_path=log)


MODES = ["wsgi", "asgi"]


def mode_args(mode: str) -> list[str]:
    """The demo's arguments for serving a directory in ``mode`` (ASGI needs uvicorn)."""
    if mode == "asgi":
        need_module("uvicorn")
        return ["--asgi"]
    return []


@pytest.fixture(scope="module")
def server(media_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = demo([str(media_dir)], media_dir, tmp_path_factory.mktemp("log") / "demo.log")
    yield srv
    srv.stop()


def get(server: Server, path: str, headers: dict[str, str] | None = None,
        method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    with RawClient(server.port) as client:
        resp = client.request(path, headers, method)
        return resp.status, {k.lower(): v for k, v in resp.headers}, resp.body


def test_index_shows_players_and_the_url_is_printed(server: Server) -> None:
    status, headers, body = get(server, "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b'<video controls preload="metadata" src="/clip.webm">' in body
    assert b'<audio controls preload="metadata" src="/song.wav">' in body
    assert b'href="/sub/"' in body
    assert f"http://127.0.0.1:{server.port}/" in server.log()


def test_ranges_come_from_the_middleware(server: Server) -> None:
    status, headers, body = get(server, "/clip.webm", {"Range": "bytes=1000-1999"})
    assert status == 206 and body == DATA[1000:2000]
    assert headers["content-range"] == f"bytes 1000-1999/{len(DATA)}"
    assert headers["content-type"] == "video/webm"
    status, headers, body = get(server, "/clip.webm", {"Range": "bytes=0-1"})
    assert body == DATA[:2]
    status, headers, body = get(server, "/clip.webm", method="HEAD")
    assert status == 200 and headers["accept-ranges"] == "bytes" and body == b""
    wait_logged(server, "GET /clip.webm Range=bytes=1000-1999 -> 206 1000 bytes\n")


def test_bad_paths(server: Server) -> None:
    assert get(server, "/../../etc/passwd")[0] == 404
    assert get(server, "/missing")[0] == 404
    assert get(server, "/sub")[0] == 301
    assert get(server, "/sub/notes.txt", {"Range": "bytes=-2"})[2] == b"lo"
    assert get(server, "/clip.webm", method="POST")[0] == 405


def test_module_app_and_no_ranges(media_dir: Path, tmp_path: Path) -> None:
    srv = demo(["apps:application"], media_dir, tmp_path / "a.log")
    try:
        status, headers, body = get(srv, "/", {"Range": "bytes=5-14"})
        assert status == 206 and body == b"5678901234"
    finally:
        srv.stop()
    srv = demo([str(media_dir), "--no-ranges"], media_dir, tmp_path / "b.log")
    try:
        status, headers, body = get(srv, "/clip.webm", {"Range": "bytes=5-14"})
        assert status == 200 and body == DATA and "accept-ranges" not in headers
    finally:
        srv.stop()


def test_sample_media(tmp_path: Path) -> None:
    srv = demo(["--sample"], tmp_path, tmp_path / "c.log")
    try:
        status, _, body = get(srv, "/")
        assert b"sweep.wav" in body
        status, headers, body = get(srv, "/sweep.wav", {"Range": "bytes=0-3"})
        assert status == 206 and body == b"RIFF"
        assert int(headers["content-range"].rpartition("/")[2]) == 44 + 10 * 60 * 8000 * 2
    finally:
        srv.stop()


# --- the request log: what the client was really sent ----------------------------------------

FAULTY_APP = """\
def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/early":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "100")])
        return fail_at(0, 100)
    if path == "/late":
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", "100000")])
        return fail_at(40000, 100000)
    if path == "/chunked":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"abc", b"", b"defg"]
    if path == "/endless":
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(1 << 30))])
        return (bytes(65536) for _ in range((1 << 30) // 65536))
    start_response("404 Not Found", [("Content-Length", "0")])
    return []


def fail_at(good, total):
    if good:
        yield b"x" * good
    raise RuntimeError(f"failed after {good} of {total} bytes")
"""


def wait_logged(server: Server, pattern: str | re.Pattern[str],
                timeout: float = 10.0) -> re.Match[str]:
    """The first log match of ``pattern`` (a literal, or a compiled regex), waited for."""
    regex = re.compile(re.escape(pattern)) if isinstance(pattern, str) else pattern
    deadline = time.monotonic() + timeout
    while not (match := regex.search(server.log())):
        assert time.monotonic() < deadline, f"{pattern!r} not logged:\n{server.log()[-3000:]}"
        time.sleep(0.02)
    return match


def read_until_closed(port: int, target: str, headers: str = "") -> tuple[int, bytes]:
    """Status and body of one request read to the end of the connection, however cut."""
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {HOST}\r\n{headers}\r\n".encode())
        data = b""
        while chunk := sock.recv(1 << 16):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("faulty")
    (root / "faulty.py").write_text(FAULTY_APP)
    srv = demo(["faulty:application"], root, root / "demo.log")
    yield srv
    srv.stop()


def test_log_counts_the_body_bytes_sent(server: Server, faulty: Server) -> None:
    assert get(server, "/clip.webm")[2] == DATA
    assert get(server, "/clip.webm", {"Range": "bytes=-10"})[2] == DATA[-10:]
    assert get(server, "/clip.webm", method="HEAD")[2] == b""
    assert get(server, "/sub")[0] == 301
    wait_logged(server, f"GET /clip.webm Range=- -> 200 {len(DATA)} bytes\n")
    wait_logged(server, "GET /clip.webm Range=bytes=-10 -> 206 10 bytes\n")
    wait_logged(server, "HEAD /clip.webm Range=- -> 200 0 bytes\n")
    wait_logged(server, "GET /sub Range=- -> 301 0 bytes\n")
    # Chunked on the wire (no Content-Length): the payload is counted, not the framing.
    status, headers, body = get(faulty, "/chunked")
    assert (status, headers["transfer-encoding"], body) == (200, "chunked", b"abcdefg")
    wait_logged(faulty, "GET /chunked Range=- -> 200 7 bytes\n")


def test_log_shows_the_500_sent_for_an_early_failure(faulty: Server) -> None:
    for headers in ({}, {"Range": "bytes=0-9"}):
        status, _, body = get(faulty, "/early", headers)
        assert status == 500 and b"Internal Server Error" in body
        logged = f"GET /early Range={headers.get('Range', '-')} -> "
        wait_logged(faulty, f"{logged}500 {len(body)} bytes, aborted: RuntimeError: "
                            "failed after 0 of 100 bytes\n")
    assert "/early Range=- -> 200" not in faulty.log()
    assert "/early Range=bytes=0-9 -> 206" not in faulty.log()


def test_log_shows_a_body_cut_by_an_exception(faulty: Server) -> None:
    status, body = read_until_closed(faulty.port, "/late")
    assert status == 200 and body == b"x" * 40000
    wait_logged(faulty, "GET /late Range=- -> 200 40000 of 100000 bytes, aborted: "
                        "RuntimeError: failed after 40000 of 100000 bytes\n")
    # A range that ends before the failure is whole.
    status, body = read_until_closed(faulty.port, "/late", "Range: bytes=100-199\r\n")
    assert status == 206 and body == b"x" * 100
    wait_logged(faulty, "GET /late Range=bytes=100-199 -> 206 100 bytes\n")


def read_some_then_reset(port: int) -> int:
    """GET /endless, read 200,000 bytes or more, then close with a reset, not a FIN, so the
    server's next write fails at once; the body bytes received."""
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall(f"GET /endless HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        data = b""
        while len(data) < 200_000:
            data += sock.recv(1 << 16)
        assert data.startswith(b"HTTP/1.1 200 ")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return len(data.partition(b"\r\n\r\n")[2])


def test_log_shows_a_client_that_went_away(faulty: Server) -> None:
    """A client that stops reading (a player that seeks, or has buffered enough) is ordinary:
    the log says so, with no error-looking word."""
    received = read_some_then_reset(faulty.port)
    match = wait_logged(faulty, re.compile(
        r"GET /endless Range=- -> 200 (\d+) of 1073741824 bytes, "
        r"client stopped reading after (\d+) bytes\n"))
    assert received <= int(match[1]) < 1 << 30 and match[1] == match[2]
    assert not re.search(r"abort|error|fail", match[0], re.IGNORECASE), match[0]


def test_log_lines_are_whole_under_concurrency(server: Server) -> None:
    clients = [RawClient(server.port) for _ in range(8)]
    try:
        for i, client in enumerate(clients):
            client.sock.sendall(f"GET /clip.webm?n={i} HTTP/1.1\r\nHost: x\r\n"
                                f"Range: bytes={i}-{i}\r\n\r\n".encode())
        for i, client in enumerate(clients):
            assert client.read_response().body == DATA[i:i + 1]
    finally:
        for client in clients:
            client.close()
    for i in range(8):
        wait_logged(server, f"\nGET /clip.webm?n={i} Range=bytes={i}-{i} -> 206 1 bytes\n")


def test_log_escapes_control_characters(server: Server) -> None:
    """A request cannot write terminal escapes or a second line into the log."""
    with RawClient(server.port) as client:
        resp = client.request("/\x1b[2J\x7f%0d%0a\xff", {"Range": "bytes=0-0\x1b[31m"})
        assert (resp.status, resp.body) == (404, b"404 Not Found\n")
    wait_logged(server, "\nGET /\\x1b[2J\\x7f%0d%0a\\xff Range=bytes=0-0\\x1b[31m -> 404 "
                        "14 bytes\n")
    assert "\x1b" not in server.log()


# --- --sample: its folder goes on exit ---------------------------------------------------------

def sample_dirs(tmp: Path) -> list[Path]:
    return sorted(tmp.glob("rangewsgi-sample-*"))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP],
                         ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_sample_folder_is_removed_on_a_signal(tmp_path: Path, sig: signal.Signals) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    port = free_port()
    srv = start_server([sys.executable, "-m", "rangewsgi", "--sample", "--port", str(port)],
                       port, cwd=tmp_path, log_path=tmp_path / "demo.log",
                       env={"TMPDIR": str(tmp)})
    try:
        [folder] = sample_dirs(tmp)
        assert (folder / "sweep.wav").stat().st_size == 44 + 10 * 60 * 8000 * 2
        assert get(srv, "/sweep.wav", {"Range": "bytes=0-3"})[2] == b"RIFF"
    finally:
        srv.stop(sig)
    assert srv.proc.returncode == (0 if sig == signal.SIGINT else 128 + sig), srv.log()
    assert sample_dirs(tmp) == [], srv.log()
    assert "Traceback" not in srv.log()


def test_sample_folder_is_removed_when_serving_fails(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    with socket.socket() as busy:
        busy.bind((HOST, 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "rangewsgi", "--sample", "--port",
                               str(port)], cwd=tmp_path, capture_output=True, timeout=60,
                              env={**os.environ, "TMPDIR": str(tmp),
                                   "PYTHONPATH": str(ROOT)}, check=False)
    # The port is taken before the sample is made: nothing made, nothing left.
    assert done.returncode == 1, done.stderr
    assert done.stderr.decode() == busy_port_line(port)
    assert sample_dirs(tmp) == []


# --- names: PATH_INFO decoded once, links encoded once -----------------------------------------

NAMES = {
    "a%41.txt": b"percent-four-one",
    "aA.txt": b"plain aA",
    "my song.txt": b"space",
    "50% off.txt": b"percent",
    "c#sharp.txt": b"hash",
    "what?.txt": b"question",
    "+plus.txt": b"plus",
    "na\u00efve \u65e5\u672c.txt": b"non-ASCII",
    "tag<b>&\"q'.txt": b"markup",
    "dir %25 #?\u00e9/inner %2F file.txt": b"inner, with a literal %2F",
    "dir %25 #?\u00e9/x%2e%2e.txt": b"dots spelled with %2e",
}


@pytest.fixture(scope="module", params=MODES)
def names(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("names")
    for name, data in NAMES.items():
        (root / name).parent.mkdir(exist_ok=True)
        (root / name).write_bytes(data)
    srv = demo([*mode_args(request.param), str(root)], root,
               tmp_path_factory.mktemp("log") / "names.log")
    yield srv
    srv.stop()


def links(page: bytes) -> dict[str, str]:
    """The listing's links: label (as shown) -> href (as in the page, unescaped)."""
    return {html.unescape(label): html.unescape(href) for href, label in
            re.findall(r'<a href="([^"]*)">([^<]*)</a>', page.decode())}


def test_path_info_is_decoded_once(names: Server) -> None:
    assert get(names, "/a%2541.txt")[2] == b"percent-four-one"
    assert get(names, "/aA.txt")[2] == b"plain aA"
    assert get(names, "/a%41.txt")[2] == b"plain aA"  # the client's %41 is an "A"
    assert get(names, "/50%25%20off.txt")[2] == b"percent"
    assert get(names, "/%2Bplus.txt")[2] == get(names, "/+plus.txt")[2] == b"plus"
    assert get(names, "/dir%20%2525%20%23%3F%C3%A9/x%252e%252e.txt")[2] == b"dots spelled " \
                                                                             b"with %2e"
    assert get(names, "/dir%20%2525%20%23%3F%C3%A9/x...txt")[0] == 404


def test_listing_links_lead_to_each_file(names: Server) -> None:
    """Every name in the listings, followed by its link over the socket, gives its bytes."""
    status, _, page = get(names, "/")
    assert status == 200
    found = links(page)
    top = {name.split("/")[0] + ("/" if "/" in name else "") for name in NAMES}
    assert set(found) == top, found
    for label, href in found.items():
        assert re.fullmatch(r"/[A-Za-z0-9%._~/-]*", href), href  # every other byte encoded
        status, _, body = get(names, href)
        assert status == 200, (label, href)
        if label.endswith("/"):
            inner = links(body)
            assert inner.pop("../") == "../"
            assert {label + name for name in inner} == {n for n in NAMES if "/" in n}
            for name, inner_href in inner.items():
                assert inner_href.startswith(href)
                assert get(names, inner_href)[2] == NAMES[label + name], inner_href
        else:
            assert body == NAMES[label], (label, href)
    assert ">na\u00efve \u65e5\u672c.txt</a>".encode() in page
    assert b">tag&lt;b&gt;&amp;&quot;q&#x27;.txt</a>" in page


def test_directory_redirect_keeps_the_encoding(names: Server) -> None:
    status, headers, _ = get(names, "/dir%20%2525%20%23%3F%C3%A9")
    assert (status, headers["location"]) == (301, "/dir%20%2525%20%23%3F%C3%A9/")
    status, _, page = get(names, headers["location"])
    assert status == 200 and "inner %2F file.txt" in links(page)
    # "//name" would be a link to another host: one leading slash is kept.
    status, headers, _ = get(names, "/%2Fdir%20%2525%20%23%3F%C3%A9")
    assert (status, headers["location"]) == (301, "/dir%20%2525%20%23%3F%C3%A9/")
    status, _, page = get(names, "//dir%20%2525%20%23%3F%C3%A9/")
    assert status == 200
    assert all(href.startswith(("/dir", "../")) for href in links(page).values())


# --- traversal: nothing outside the served directory --------------------------------------------

SECRET = b"TOP SECRET, outside the served directory"


@pytest.fixture(scope="module", params=MODES)
def jail(request: pytest.FixtureRequest,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    base = tmp_path_factory.mktemp("jail")
    (base / "secret.txt").write_bytes(SECRET)
    root = base / "served"
    (root / "sub").mkdir(parents=True)
    (root / "inside.txt").write_bytes(b"inside")
    (root / "leak.txt").symlink_to(base / "secret.txt")
    (root / "escape").symlink_to(base)
    srv = demo([*mode_args(request.param), str(root)], root, base / "jail.log")
    yield srv, base
    srv.stop()


def test_traversal_never_leaves_the_served_directory(jail: tuple[Server, Path]) -> None:
    server, base = jail
    assert get(server, "/inside.txt")[2] == b"inside"
    assert get(server, "/sub/../inside.txt")[2] == b"inside"
    secret = str(base / "secret.txt")
    attempts = {
        "/../secret.txt": 404,
        "/sub/../../secret.txt": 404,
        "/%2e%2e/secret.txt": 404,
        "/%2E%2E%2Fsecret.txt": 404,
        "/sub/..%2f..%2fsecret.txt": 404,
        "/..%5csecret.txt": 404,
        "/%252e%252e/secret.txt": 404,
        "/" + secret: 404,
        "/%2F" + secret.lstrip("/"): 404,
        "//" + secret.lstrip("/"): 404,
        "/leak.txt": 404,
        "/escape/secret.txt": 404,
        "/escape/": 404,
        "/" + "a" * 300: 404,
        "/inside.txt%00": 400,
        "/%00/../../secret.txt": 400,
        "/sub%00.txt": 400,
    }
    for target, expected in attempts.items():
        for method in ("GET", "HEAD"):
            status, _, body = get(server, target, method=method)
            assert (target, method, status) == (target, method, expected)
            assert SECRET not in body and b"sub/" not in body
    status, _, page = get(server, "/")
    assert status == 200 and SECRET not in page


# --- the command names itself as it was run ------------------------------------------------

def test_help_names_the_command_as_invoked(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    as_module = subprocess.run([sys.executable, "-m", "rangewsgi", "--help"], env=env,
                               capture_output=True, text=True, timeout=60, check=True)
    assert as_module.stdout.startswith("usage: python -m rangewsgi [-h]")
    # The console script as pip writes it, from the entry point in pyproject.toml.
    entry = re.search(r'^rangewsgi = "([\w.]+):(\w+)"$',
                      (ROOT / "pyproject.toml").read_text(), re.MULTILINE)
    assert entry, "no rangewsgi console script in pyproject.toml"
    script = tmp_path / "bin" / "rangewsgi"
    script.parent.mkdir()
    script.write_text(f"import re\nimport sys\nfrom {entry[1]} import {entry[2]}\n"
                      "if __name__ == '__main__':\n"
                      "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
                      f"    sys.exit({entry[2]}())\n")
    as_script = subprocess.run([sys.executable, str(script), "--help"], env=env,
                               capture_output=True, text=True, timeout=60, check=True)
    assert as_script.stdout.startswith("usage: rangewsgi [-h]")
    assert "python -m" not in as_script.stdout
    assert as_script.stdout.partition("\n\n")[2] == as_module.stdout.partition("\n\n")[2]


# --- ASGI: uvicorn, the ASGI middleware, the same log ----------------------------------------

ASGI_APPS = """\
BODY = b"0123456789" * 10


async def respond(name, scope, send):
    if scope["type"] != "http":  # lifespan: nothing to start
        return
    body = name.encode() + b":" + BODY
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode()),
        (b"etag", b'"v1"')]})
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send):
    await respond("function", scope, send)


class Callable:
    async def __call__(self, scope, receive, send):
        await respond("object", scope, send)


instance = Callable()


class Awaitable:
    def __init__(self, scope, receive, send):
        self.call = respond("class", scope, send)

    def __await__(self):
        return self.call.__await__()


def wsgi(environ, start_response):
    start_response("200 OK", [("Content-Length", "0")])
    return []
"""

FAULTY_ASGI_APP = """\
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/early":
        raise RuntimeError("failed before the start")
    size = {"/late": 100000, "/endless": 1 << 30}[path]
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(size).encode())]})
    if path == "/late":
        await send({"type": "http.response.body", "body": b"x" * 40000, "more_body": True})
        raise RuntimeError("failed after 40000 of 100000 bytes")
    for _ in range(size // 65536):
        await send({"type": "http.response.body", "body": bytes(65536), "more_body": True})
    await send({"type": "http.response.body", "body": b""})
"""


def test_asgi_apps_are_recognised() -> None:
    from rangewsgi.asgi import RangeMiddleware as AsgiRangeMiddleware
    from rangewsgi.asgi_demo import is_asgi_app

    namespace: dict[str, Any] = {}
    exec(ASGI_APPS, namespace)
    assert is_asgi_app(namespace["app"])
    assert is_asgi_app(namespace["instance"])
    assert is_asgi_app(AsgiRangeMiddleware(namespace["app"]))
    assert is_asgi_app(functools.partial(namespace["respond"], "partial"))
    # A class cannot be told from a WSGI app (its instances may be anything): --asgi.
    assert not is_asgi_app(namespace["Awaitable"])
    assert not is_asgi_app(namespace["Callable"])
    assert not is_asgi_app(namespace["wsgi"])
    assert not is_asgi_app(RangeMiddleware(namespace["wsgi"]))


@pytest.fixture(scope="module")
def asgi_root(tmp_path_factory: pytest.TempPathFactory, media_dir: Path) -> Path:
    need_module("uvicorn")
    (media_dir / "asgiapps.py").write_text(ASGI_APPS)
    (media_dir / "faultyasgi.py").write_text(FAULTY_ASGI_APP)
    return media_dir


@pytest.mark.parametrize(("args", "name"), [
    (["asgiapps:app"], "function"),
    (["asgiapps:instance"], "object"),
    (["asgiapps:Awaitable", "--asgi"], "class"),
], ids=["function", "object", "class-with-flag"])
def test_asgi_module_app_is_served_by_uvicorn(asgi_root: Path, tmp_path: Path,
                                              args: list[str], name: str) -> None:
    srv = demo(args, asgi_root, tmp_path / "asgi.log")
    try:
        body = f"{name}:".encode() + b"0123456789" * 10
        with RawClient(srv.port) as client:
            resp = client.request("/", {"Range": "bytes=0-14"})
            assert (resp.status, resp.body) == (206, body[:15])
            assert resp.header("content-range") == f"bytes 0-14/{len(body)}"
            assert resp.header("server") == "uvicorn"
            resp = client.request("/", {"If-None-Match": '"v1"'})
            assert (resp.status, resp.body) == (304, b"")
            client.assert_idle()
        wait_logged(srv, "GET / Range=bytes=0-14 -> 206 15 bytes\nGET / Range=- -> 304 0 bytes\n")
        assert f"http://127.0.0.1:{srv.port}/ (ASGI, uvicorn " in srv.log()
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def asgi_server(asgi_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = demo(["--asgi", str(asgi_root)], asgi_root,
               tmp_path_factory.mktemp("log") / "asgi.log")
    yield srv
    srv.stop()


def test_asgi_directory_ranges_and_304_over_a_socket(asgi_server: Server) -> None:
    with RawClient(asgi_server.port) as client:
        full = client.request("/clip.webm")
        assert (full.status, full.body) == (200, DATA)
        assert full.header("content-type") == "video/webm"
        assert full.header("accept-ranges") == "bytes"
        etag = full.header("etag")
        assert etag and full.header("last-modified")
        part = client.request("/clip.webm", {"Range": "bytes=1000-1999"})
        assert (part.status, part.body) == (206, DATA[1000:2000])
        assert part.header("content-range") == f"bytes 1000-1999/{len(DATA)}"
        assert part.header("etag") == etag
        tail = client.request("/clip.webm", {"Range": "bytes=-10", "If-Range": etag})
        assert (tail.status, tail.body) == (206, DATA[-10:])
        same = client.request("/clip.webm", {"If-None-Match": etag, "Range": "bytes=0-1"})
        assert (same.status, same.body) == (304, b"")
        assert same.header("etag") == etag
        head = client.request("/clip.webm", method="HEAD")
        assert (head.status, head.header("content-length")) == (200, str(len(DATA)))
        assert client.request("/sub/notes.txt", {"Range": "bytes=-2"}).body == b"lo"
        client.assert_idle()
    wait_logged(asgi_server, f"GET /clip.webm Range=- -> 200 {len(DATA)} bytes\n"
                             "GET /clip.webm Range=bytes=1000-1999 -> 206 1000 bytes\n"
                             "GET /clip.webm Range=bytes=-10 -> 206 10 bytes\n"
                             "GET /clip.webm Range=bytes=0-1 -> 304 0 bytes, not modified: "
                             "the client sent If-None-Match and its cached copy is current, "
                             "so no range was needed\n"
                             "HEAD /clip.webm Range=- -> 200 0 bytes\n"
                             "GET /sub/notes.txt Range=bytes=-2 -> 206 2 bytes\n")


def test_asgi_directory_app_answers_as_the_wsgi_one(server: Server,
                                                    asgi_server: Server) -> None:
    for target, method in [("/", "GET"), ("/sub", "GET"), ("/missing", "GET"),
                           ("/clip.webm", "POST"), ("/sub/", "GET"), ("/clip.webm%00", "GET")]:
        wsgi_status, wsgi_headers, wsgi_body = get(server, target, method=method)
        status, headers, body = get(asgi_server, target, method=method)
        assert (status, body) == (wsgi_status, wsgi_body), target
        for name in ("content-type", "location", "allow"):
            assert headers.get(name) == wsgi_headers.get(name), (target, name)
    status, headers, _ = get(asgi_server, "/clip.webm", method="HEAD")
    _, wsgi_headers, _ = get(server, "/clip.webm", method="HEAD")
    for name in ("content-type", "content-length", "etag", "last-modified", "cache-control"):
        assert headers[name] == wsgi_headers[name], name


def test_asgi_no_ranges_streams_a_plain_200(asgi_root: Path, tmp_path: Path) -> None:
    srv = demo(["--asgi", "--no-ranges", str(asgi_root)], asgi_root, tmp_path / "plain.log")
    try:
        with RawClient(srv.port) as client:
            resp = client.request("/clip.webm", {"Range": "bytes=5-14"})
            assert (resp.status, resp.body) == (200, DATA)
            assert resp.header("accept-ranges") is None
            etag = resp.header("etag")
            assert etag
            resp = client.request("/clip.webm", {"If-None-Match": etag})
            assert (resp.status, resp.body) == (200, DATA)
            client.assert_idle()
        wait_logged(srv, f"GET /clip.webm Range=bytes=5-14 -> 200 {len(DATA)} bytes\n")
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def faulty_asgi(asgi_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = demo(["faultyasgi:app"], asgi_root, tmp_path_factory.mktemp("log") / "faulty.log")
    yield srv
    srv.stop()


def test_asgi_log_shows_failures_and_a_client_that_went_away(faulty_asgi: Server) -> None:
    status, _, body = get(faulty_asgi, "/early", {"Range": "bytes=0-9"})
    assert (status, body) == (500, b"Internal Server Error")
    wait_logged(faulty_asgi, "GET /early Range=bytes=0-9 -> 500 21 bytes, aborted: "
                             "RuntimeError: failed before the start\n")
    status, body = read_until_closed(faulty_asgi.port, "/late")
    assert (status, body) == (200, b"x" * 40000)
    wait_logged(faulty_asgi, "GET /late Range=- -> 200 40000 of 100000 bytes, aborted: "
                             "RuntimeError: failed after 40000 of 100000 bytes\n")
    # A range that ends before the failure is whole.
    status, body = read_until_closed(faulty_asgi.port, "/late", "Range: bytes=100-199\r\n")
    assert (status, body) == (206, b"x" * 100)
    wait_logged(faulty_asgi, "GET /late Range=bytes=100-199 -> 206 100 bytes\n")
    received = read_some_then_reset(faulty_asgi.port)
    match = wait_logged(faulty_asgi, re.compile(
        r"GET /endless Range=- -> 200 (\d+) of 1073741824 bytes, "
        r"client stopped reading after (\d+) bytes\n"))
    assert received <= int(match[1]) < 1 << 30 and match[1] == match[2]
    assert not re.search(r"abort|error|fail", match[0], re.IGNORECASE), match[0]


# Runs ``python -m rangewsgi ARGS`` as if uvicorn were not installed.
WITHOUT_UVICORN = ("import runpy, sys; sys.modules['uvicorn'] = None; "
                   "runpy.run_module('rangewsgi', run_name='__main__', alter_sys=True)")


@pytest.mark.parametrize("args", [["--asgi", "."], ["asgiapps:app"], ["--asgi", "--sample"]],
                         ids=["directory", "module-app", "sample"])
def test_asgi_without_uvicorn_says_what_to_install(asgi_root: Path, tmp_path: Path,
                                                   args: list[str]) -> None:
    done = subprocess.run([sys.executable, "-c", WITHOUT_UVICORN, *args], cwd=asgi_root,
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)})
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert "pip install 'rangewsgi[asgi]'" in line and "pip install uvicorn" in line, line
    assert done.stdout == ""
    assert sample_dirs(tmp_path) == []  # nothing made before the check


def test_wsgi_needs_no_uvicorn(media_dir: Path) -> None:
    with socket.socket() as busy:
        busy.bind((HOST, 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([sys.executable, "-c", WITHOUT_UVICORN, "apps:application",
                               "--port", str(port)], cwd=media_dir, capture_output=True,
                              text=True, timeout=60, check=False,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    # It got as far as werkzeug's listening socket.
    assert done.returncode == 1 and done.stderr == busy_port_line(port), done.stderr
    assert "uvicorn" not in done.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP],
                         ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_asgi_sample_folder_is_removed_on_a_signal(tmp_path: Path, sig: signal.Signals) -> None:
    need_module("uvicorn")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    port = free_port()
    # No ffmpeg on PATH: the sample is the WAV alone, made in a fraction of a second.
    srv = start_server([sys.executable, "-m", "rangewsgi", "--asgi", "--sample", "--port",
                        str(port)], port, cwd=tmp_path, log_path=tmp_path / "demo.log",
                       env={"TMPDIR": str(tmp), "PATH": str(tmp_path / "no-tools")})
    try:
        assert len(sample_dirs(tmp)) == 1
        assert get(srv, "/sweep.wav", {"Range": "bytes=0-3"})[2] == b"RIFF"
    finally:
        srv.stop(sig)
    assert srv.proc.returncode == (0 if sig == signal.SIGINT else 128 + sig), srv.log()
    assert sample_dirs(tmp) == [], srv.log()
    assert "Traceback" not in srv.log()
    assert "GET /sweep.wav Range=bytes=0-3 -> 206 4 bytes\n" in srv.log()


# --- the command line: one-line errors ------------------------------------------------------

def busy_port_line(port: int) -> str:
    return f"rangewsgi demo: port {port} on 127.0.0.1 is in use; choose another with --port\n"


def run_demo(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rangewsgi", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.parametrize("mode", MODES)
def test_a_busy_port_names_the_option(media_dir: Path, mode: str) -> None:
    with socket.socket() as busy:
        busy.bind((HOST, 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = run_demo([*mode_args(mode), ".", "--port", str(port)], media_dir)
    assert (done.returncode, done.stderr, done.stdout) == (1, busy_port_line(port), "")


BROKEN_APPS = {
    "raises.py": "raise RuntimeError('no database configured')\n",
    "syntax.py": "def application(environ, start_response)\n    return []\n",
    "needs.py": "import nosuchdependency\n",
}


@pytest.mark.parametrize(("target", "reason"), [
    ("nosuchmodule:app", "ModuleNotFoundError: No module named 'nosuchmodule'"),
    ("needs:application", "ModuleNotFoundError: No module named 'nosuchdependency'"),
    ("raises:application", "RuntimeError: no database configured"),
    ("syntax:application", "SyntaxError: expected ':'"),  # then where: (syntax.py, line 1)
    ("apps:missing", "AttributeError: module 'apps' has no attribute 'missing'"),
], ids=["no-module", "no-dependency", "raises", "syntax", "no-attribute"])
@pytest.mark.parametrize("mode", MODES)
def test_an_app_that_cannot_be_imported_is_one_line(media_dir: Path, tmp_path: Path,
                                                    mode: str, target: str,
                                                    reason: str) -> None:
    for name, text in BROKEN_APPS.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "apps.py").write_text((media_dir / "apps.py").read_text())
    args = [*mode_args(mode), target, "--port", str(free_port())]
    done = run_demo(args, tmp_path)
    assert (done.returncode, done.stdout) == (1, ""), done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith(f"rangewsgi demo: cannot import app {target!r}: {reason}"), line
    assert line.endswith(" (--debug shows the traceback)"), line
    if target.startswith("syntax"):
        assert line.endswith("syntax.py, line 1) (--debug shows the traceback)"), line
    # --debug: the whole traceback, ending with the same error.
    debug = run_demo([*args, "--debug"], tmp_path)
    assert debug.returncode == 1 and debug.stdout == ""
    assert debug.stderr.startswith("Traceback (most recent call last):\n"), debug.stderr
    last = debug.stderr.splitlines()[-1]  # a SyntaxError shows its place above, not here
    assert last == reason, last
    assert "rangewsgi demo: cannot import" not in debug.stderr


@pytest.mark.parametrize("value", ["0", "-1", "-100"])
@pytest.mark.parametrize("mode", MODES)
def test_max_ranges_below_one_is_a_usage_error(media_dir: Path, mode: str, value: str) -> None:
    done = run_demo([*mode_args(mode), ".", "--max-ranges", value, "--port", str(free_port())],
                    media_dir)
    assert (done.returncode, done.stdout) == (2, ""), done.stderr
    usage, error = done.stderr.splitlines()[0], done.stderr.splitlines()[-1]
    assert usage.startswith("usage: python -m rangewsgi [-h]")
    assert error == ("python -m rangewsgi: error: argument --max-ranges: must be at least 1, "
                     f"not {int(value)}")
    assert "Traceback" not in done.stderr


# --- the log: a 304 to a Range request explained ------------------------------------------

@pytest.mark.parametrize("fixture", ["server", "asgi_server"])
def test_log_explains_a_304_to_a_range_request(request: pytest.FixtureRequest,
                                               fixture: str) -> None:
    srv: Server = request.getfixturevalue(fixture)
    # A connection per request: werkzeug closes each one, and a request sent on it within
    # 10 ms of the response is swallowed by its drain of the request body.
    status, full, body = get(srv, "/sub/notes.txt?n=304")
    etag, modified = full.get("etag"), full.get("last-modified")
    assert (status, body) == (200, b"hello") and etag and modified
    asked = [
        ({"Range": "bytes=0-1", "If-None-Match": etag}, "If-None-Match"),
        ({"Range": "bytes=-2", "If-Modified-Since": modified}, "If-Modified-Since"),
        ({"Range": "bytes=1-", "If-None-Match": etag, "If-Modified-Since": modified},
         "If-None-Match and If-Modified-Since"),
    ]
    for headers, _ in asked:
        status, answer, body = get(srv, "/sub/notes.txt?n=304", headers)
        assert (status, body, answer.get("etag")) == (304, b"", etag)
    status, _, body = get(srv, "/sub/notes.txt?n=304", {"If-None-Match": etag})
    assert (status, body) == (304, b"")
    for headers, sent in asked:
        wait_logged(srv, f"\nGET /sub/notes.txt?n=304 Range={headers['Range']} -> 304 0 bytes, "
                         f"not modified: the client sent {sent} and its cached copy is "
                         "current, so no range was needed\n")
    # Without a Range there is nothing to explain.
    wait_logged(srv, "\nGET /sub/notes.txt?n=304 Range=- -> 304 0 bytes\n")


# --- stopping: within moments, whatever SIGINT was inherited, whatever is open -------------

# Starts ``python -m rangewsgi ARGS`` with SIGINT ignored, as a background job of a
# non-interactive shell (``cmd &``) or a child of any process that ignores it starts: the
# disposition survives exec, and CPython then installs no SIGINT handler of its own.
SIGINT_IGNORED = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
                  "os.execv(sys.executable, [sys.executable, '-m', 'rangewsgi', *sys.argv[1:]])")
WAV_SIZE = 44 + 10 * 60 * 8000 * 2


@pytest.fixture(scope="module")
def sample_wav(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    from rangewsgi.demo import write_sample

    return write_sample(tmp_path_factory.mktemp("wav")).read_bytes()


def start_download(port: int) -> socket.socket:
    """GET the whole WAV on a connection that then stops reading: a response under way."""
    sock = socket.create_connection((HOST, port), timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(f"GET /sweep.wav HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    return sock


def read_more(sock: socket.socket, data: bytes, limit: int = 1 << 16) -> bytes:
    """``data`` and what the connection delivers next, up to ``limit`` bytes in all or its
    end, closed or reset (what the kernel still holds of a stopped server's response trickles
    through the small receive window: the rest is not waited for)."""
    with contextlib.suppress(ConnectionResetError):
        while len(data) < limit and (chunk := sock.recv(1 << 16)):
            data += chunk
    return data


@pytest.mark.parametrize("held", ["keep-alive", "download"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP],
                         ids=["SIGINT", "SIGTERM", "SIGHUP"])
@pytest.mark.parametrize("mode", MODES)
def test_a_signal_stops_the_demo_whatever_it_inherited(tmp_path: Path, sample_wav: bytes,
                                                       mode: str, sig: signal.Signals,
                                                       held: str) -> None:
    """Started with SIGINT ignored, holding idle connections or a download that its client
    has stopped reading, the demo still stops by itself on a signal: the sample folder goes,
    nothing is killed, and the log has no error and no traceback."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    port = free_port()
    # No ffmpeg on PATH: the sample is the WAV alone, made in a fraction of a second.
    srv = start_server([sys.executable, "-c", SIGINT_IGNORED, *mode_args(mode), "--sample",
                        "--port", str(port)], port, cwd=tmp_path, log_path=tmp_path / "demo.log",
                       env={"TMPDIR": str(tmp), "PATH": str(tmp_path / "no-tools")})
    client = RawClient(port)  # kept open: keep-alive on uvicorn (werkzeug closes it)
    idle = socket.create_connection((HOST, port), timeout=30)  # a request not yet complete
    download = None
    try:
        assert len(sample_dirs(tmp)) == 1
        assert client.request("/sweep.wav", {"Range": "bytes=0-3"}).body == b"RIFF"
        idle.sendall(f"GET /sweep.wav HTTP/1.1\r\nHost: {HOST}\r\n".encode())
        if held == "download":
            download = start_download(port)
            received = download.recv(1 << 16)
            assert received.startswith(b"HTTP/1.1 200 OK\r\n"), received
            assert b"\r\n\r\n" in received
            # The response is under way: its client reads no more until the signal.
    finally:
        srv.stop(sig)  # SIGKILL if it has not gone by itself within the deadline
        client.close()
        idle.close()
    assert srv.proc.returncode == (0 if sig == signal.SIGINT else 128 + sig), srv.log()
    assert sample_dirs(tmp) == [], srv.log()
    assert not re.search(r"Traceback|ERROR|Error", srv.log()), srv.log()
    assert "GET /sweep.wav Range=bytes=0-3 -> 206 4 bytes\n" in srv.log()
    if download is not None:
        with download:
            head, _, body = read_more(download, received).partition(b"\r\n\r\n")
        assert f"Content-Length: {WAV_SIZE}".lower().encode() in head.lower()
        assert len(body) < WAV_SIZE and body == sample_wav[:len(body)]
        match = re.search(r"\nGET /sweep.wav Range=- -> 200 (\d+) of (\d+) bytes, "
                          r"stopped with the server\n", srv.log())
        assert match, srv.log()
        assert int(match[1]) < int(match[2]) == WAV_SIZE


# --- an error answer to HEAD -------------------------------------------------------------------

@pytest.mark.parametrize("ranges", [[], ["--no-ranges"]], ids=["ranges", "no-ranges"])
@pytest.mark.parametrize("mode", MODES)
def test_an_error_to_head_has_no_content(media_dir: Path, tmp_path: Path, mode: str,
                                         ranges: list[str]) -> None:
    """RFC 9110 9.3.2: an answer to HEAD carries no content, an error's neither (werkzeug
    writes whatever the app returns, so the app must return none)."""
    srv = demo([*mode_args(mode), *ranges, str(media_dir)], media_dir, tmp_path / "demo.log")
    try:
        with socket.create_connection((HOST, srv.port), timeout=30) as sock:
            sock.sendall(b"HEAD /missing.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            raw = b""
            while chunk := sock.recv(65536):  # to the end: the server closes
                raw += chunk
    finally:
        srv.stop()
    head, _, content = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404 "), raw
    assert b"\r\ncontent-length: 14" in head.lower() and content == b"", raw


def test_the_asgi_demo_loads_no_more_than_the_asgi_adapter() -> None:
    """The layering: the ASGI side of the demo (and the command line) add no WSGI server,
    no werkzeug and no WSGI demo to what ``rangewsgi.asgi`` loads."""
    code = ("import sys, rangewsgi.asgi; before = set(sys.modules); "
            "import rangewsgi.asgi_demo, rangewsgi.demo; "
            "print(' '.join(sorted(m for m in set(sys.modules) - before "
            "if m.startswith(('rangewsgi', 'werkzeug')))))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True, timeout=60)
    assert done.stdout.split() == ["rangewsgi.asgi_demo", "rangewsgi.demo",
                                   "rangewsgi.demo_common"]
