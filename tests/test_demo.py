"""The README's first command: ``python -m rangewsgi`` serving a directory or a module:app."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import RawClient, Server, free_port, start_server

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
    assert "GET /clip.webm Range=bytes=1000-1999 -> 206" in server.log()


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
