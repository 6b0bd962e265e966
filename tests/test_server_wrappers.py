"""What each WSGI server does with ``wsgi.file_wrapper``, observed on loopback, no middleware.

Every server in ``server_configs.launch.SERVERS`` is started once, under strace (sendfile calls
only), serving ``server_configs/rawapps.py``: a 1 MiB file, and three routes that return
``environ['wsgi.file_wrapper'](obj, 8192)`` with ``Content-Length: 200000`` (``LENGTH``):

- ``/seeked``: ``obj`` is the real file seeked to 100000 (``OFFSET``); the rest of the file
  (948576 bytes) is longer than the declared length;
- ``/window``: ``obj`` has ``read``/``seek``/``tell`` but no ``fileno``, reads from 100000 and
  its ``read`` stops at 300000;
- ``/split``: ``obj`` has a ``fileno`` whose OS offset is 0, while its ``tell()`` says 100000
  and its ``read`` gives bytes 100000-299999: it shows whether a server takes the start from
  the descriptor's offset (``lseek``) or from ``tell()``, or just iterates.

Each test below asserts what was observed, so it fails when a server changes. Answers are read
by a strict client; on keep-alive servers a second request follows on the same connection (an
overrun shows as bytes before its answer), elsewhere the connection is read to EOF.

Observed (Debian 12, Python 3.11.7 from pyenv; Debian's /usr/bin/python3 is 3.11.2). Offset:
does the server send from the file's current offset (else from byte 0)? Stops: at most
Content-Length bytes on the wire (else on to the end of the file)? sendfile: the first call's
offset and the bytes of all calls, strace'd. Wrapper: ``environ['wsgi.file_wrapper']``.

====================== ============= ====== ===== =============== ===========================
server (launch name)   version       offset stops sendfile(2)     wrapper (module.qualname)
====================== ============= ====== ===== =============== ===========================
gunicorn-sync/gthread  27.0.1 (pip)  yes    yes   100000, 200000  gunicorn.http.wsgi
                                                                  .FileWrapper
gunicorn-gevent        27.0.1        yes    yes   no              gunicorn.http.wsgi
                       gevent 26.9.0                              .FileWrapper
gunicorn20-sync        20.1.0        NO     yes   0, 200000       gunicorn.http.wsgi
                       (Debian 12)                                .FileWrapper
waitress               3.0.2         yes    yes   no              waitress.buffers
                                                                  .ReadOnlyFileBasedBuffer
uwsgi, uwsgi-http11    2.0.31        NO     NO    0, 1048576      None.uwsgi_sendfile (a
                                                                  built-in function)
wsgiref                Python 3.11.7 yes    NO    no              wsgiref.util.FileWrapper
mod_wsgi (embedded)    4.9.4, Apache yes    yes   100000, 200000  mod_wsgi.FileWrapper
mod_wsgi-daemon        2.4.71        yes    yes   100000, 200000  mod_wsgi.FileWrapper
bjoern                 3.2.2         yes    NO    100000, 948576  builtins.FileWrapper (C)
cheroot                11.1.2        -      -     -               absent
werkzeug-*             3.1.8         -      -     -               absent
gevent (pywsgi)        26.9.0        -      -     -               absent
granian (wsgi)         2.8.9         -      -     -               absent
twisted (web.wsgi)     26.10.0       -      -     -               absent
====================== ============= ====== ===== =============== ===========================

Why, in the installed source (site-packages of the pyenv Python unless said; C servers: the
sdist of the same version from ``pip download --no-binary :all:``):

- gunicorn 27: gunicorn/http/wsgi.py:526 ``offset = os.lseek(fileno, 0, os.SEEK_CUR)``; :554
  ``self.sock.sendfile(respiter.filelike, offset=offset, count=nbytes)``, nbytes is
  Content-Length (:531). The gevent worker's socket is gevent's: gevent/_socket3.py:426
  ``_sendfile_use_sendfile`` gives up, :430 ``_sendfile_use_send`` seeks to ``offset`` (when
  not 0), reads and sends at most ``count``.
- gunicorn 20.1.0: /usr/lib/python3/dist-packages/gunicorn/http/wsgi.py:378
  ``self.sock.sendfile(respiter.filelike, count=nbytes)`` passes no offset (it computed one at
  :363 only to restore it), so Python's socket.py:388 calls ``os.sendfile`` from offset 0.
- waitress: waitress/task.py:439-441 ``app_iter.prepare(cl)``; waitress/buffers.py:155-166
  ``prepare`` measures ``tell()`` to ``seek(0, 2)`` and keeps min(that, Content-Length);
  :168 ``get`` never reads past it.
- uWSGI: plugins/python/wsgi_subhandler.c:269-273 ``uwsgi_response_sendfile_do(wsgi_req,
  wsgi_req->sendfile_fd, 0, 0)``; core/writer.c:584 ``uwsgi_response_sendfile_do_can_close``
  takes len 0 as the fstat size: the whole file from byte 0, whatever Content-Length says.
  The wrapper (plugins/python/wsgi_handlers.c:463 ``py_uwsgi_sendfile``) returns the file
  object itself and remembers it.
- wsgiref: wsgiref/handlers.py:183 ``for data in self.result: self.write(data)``; ``write``
  (:275) does not truncate ("XXX check Content-Length and truncate?"); wsgiref/util.py:23
  ``FileWrapper.__next__`` reads until EOF.
- mod_wsgi: src/server/mod_wsgi.c ``Adapter_process_file_wrapper`` (:2790): the start is
  ``filelike.tell()`` (:2896; the descriptor's offset is only saved and restored), the length
  is Content-Length (:2983), sent by ``Adapter_output_file`` as
  ``apr_bucket_file_create(dupfile, offset, len)`` (:2537). In daemon mode the daemon process
  does the sendfile(2), onto its UNIX socket to Apache.
- bjoern: bjoern/server.c:387 ``lseek(fd, 0, SEEK_CUR)`` in ``on_write_sendfile``; :497
  ``do_sendfile`` repeats 16 KiB calls (portable_sendfile.c:5) until sendfile returns 0 (EOF);
  bjoern/wsgi.c:91 takes that path whenever the response has a Content-Length.
- No wrapper: cheroot/wsgi.py:249 ``Gateway_10.get_environ``, werkzeug/serving.py:168
  ``make_environ``, gevent/pywsgi.py:1601 ``WSGIServer.base_env``, granian/wsgi.py:35-48
  ``_callback_wrapper`` (starts from a copy of ``os.environ``), twisted/web/wsgi.py:254
  ``_WSGIResponse.__init__``.

``/window`` (no ``fileno``) gives the right bytes, at most Content-Length, without sendfile, on
every server that has a wrapper. ``/split``: the servers that send from the descriptor
(gunicorn sync/gthread, Debian's gunicorn, bjoern, uWSGI) send from byte 0; mod_wsgi sends
from ``tell()``; waitress, wsgiref and the gevent worker read.

How each server can be told from its environ (``SERVER_SOFTWARE`` exactly as observed):

- gunicorn: ``gunicorn/27.0.1`` / ``gunicorn/20.1.0``; key ``gunicorn.socket`` (a
  ``gevent._socket3.socket`` under the gevent worker); 27 adds ``wsgi.early_hints``;
- waitress: ``waitress``; key ``waitress.client_disconnected``;
- uWSGI: no ``SERVER_SOFTWARE``; keys ``uwsgi.version`` (``b'2.0.31'``), ``uwsgi.node``,
  ``uwsgi.core``;
- mod_wsgi: ``Apache/2.4.71 (Debian) mod_wsgi/4.9.4 Python/3.11`` (follows ``ServerTokens``);
  ``mod_wsgi.version`` ``(4, 9, 4)``, ``apache.version``; daemon mode: ``mod_wsgi.process_group``
  non-empty and ``mod_wsgi.daemon_start``;
- bjoern: no ``SERVER_SOFTWARE``, no server key: only the wrapper type (``FileWrapper`` in
  ``builtins``);
- wsgiref: ``WSGIServer/0.2``; the environ includes ``os.environ``;
- cheroot: ``Cheroot/11.1.2 Server``; werkzeug: ``Werkzeug/3.1.8``, key ``werkzeug.socket``;
  gevent: ``gevent/20.0 Python/3.11``; granian: ``Granian``; twisted: none.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from server_configs.launch import KEEPALIVE, SERVERS, launch, shared_dir, write_data
from server_configs.rawapps import LENGTH, OFFSET
from support import RawClient, RawResponse, free_port

pytestmark = pytest.mark.network

SIZE = 1 << 20  # the wrapped file: 1 MiB
REST = SIZE - OFFSET  # what a server sending "from the offset to the end of the file" sends
APP = "rawapps:app"


@dataclass(frozen=True)
class Row:
    """What a server was seen to do (see the table above)."""

    software: str | None  # SERVER_SOFTWARE, a regular expression (None: not in the environ)
    keys: tuple[str, ...]  # environ keys that name the server
    wrapper: str | None  # module.qualname of environ['wsgi.file_wrapper'] (None: absent)
    makes: str | None = None  # module.qualname of what wrapper(file, 8192) returns
    offset: bool = True  # /seeked: sends from the file's current offset (else from byte 0)
    stops: bool = True  # /seeked: at most Content-Length bytes go on the wire
    sendfile: tuple[int, int] | None = None  # /seeked: (first offset, bytes of all calls)
    split: tuple[int, int] = (OFFSET, 0)  # /split: (offset the body came from, overrun)


GUNICORN = "gunicorn.http.wsgi.FileWrapper"
GUNICORN_21 = r"gunicorn/(?:2[1-9]|[3-9][0-9])\.\d+\.\d+"  # 21.0 and later
MOD_WSGI = Row(r"Apache/2\.4\.\d+ \(Debian\) mod_wsgi/4\.9\.4 Python/3\.11",
               ("mod_wsgi.version", "apache.version"), "mod_wsgi.FileWrapper",
               "mod_wsgi.FileWrapper", sendfile=(OFFSET, LENGTH))
UWSGI = Row(None, ("uwsgi.version", "uwsgi.node", "uwsgi.core"), "None.uwsgi_sendfile",
            "_io.BufferedReader", offset=False, stops=False, sendfile=(0, SIZE),
            split=(0, SIZE - LENGTH))

EXPECTED: dict[str, Row] = {
    "gunicorn-sync": Row(GUNICORN_21, ("gunicorn.socket", "wsgi.early_hints"),
                         GUNICORN, GUNICORN, sendfile=(OFFSET, LENGTH), split=(0, 0)),
    "gunicorn-gthread": Row(GUNICORN_21,
                            ("gunicorn.socket", "wsgi.early_hints"), GUNICORN, GUNICORN,
                            sendfile=(OFFSET, LENGTH), split=(0, 0)),
    # gevent's socket.sendfile seeks to the offset gunicorn passes (0 here) only when it is
    # not 0, then reads: /split comes out right by accident.
    "gunicorn-gevent": Row(GUNICORN_21,
                           ("gunicorn.socket", "wsgi.early_hints"), GUNICORN, GUNICORN),
    "gunicorn20-sync": Row(r"gunicorn/20\.1\.0", ("gunicorn.socket",), GUNICORN, GUNICORN,
                           offset=False, sendfile=(0, LENGTH), split=(0, 0)),
    "waitress": Row(r"waitress", ("waitress.client_disconnected",),
                    "waitress.buffers.ReadOnlyFileBasedBuffer",
                    "waitress.buffers.ReadOnlyFileBasedBuffer"),
    "uwsgi": UWSGI,
    "uwsgi-http11": UWSGI,
    "cheroot": Row(r"Cheroot/\d+\.\d+\.\d+ Server", ("ACTUAL_SERVER_PROTOCOL",), None),
    "werkzeug-run-simple": Row(r"Werkzeug/\d+\.\d+\.\d+", ("werkzeug.socket",), None),
    "werkzeug-make-server": Row(r"Werkzeug/\d+\.\d+\.\d+", ("werkzeug.socket",), None),
    "wsgiref": Row(r"WSGIServer/0\.2", (), "wsgiref.util.FileWrapper",
                   "wsgiref.util.FileWrapper", stops=False),
    "mod_wsgi": MOD_WSGI,
    "mod_wsgi-daemon": MOD_WSGI,
    "gevent": Row(r"gevent/\d+\.\d+ Python/3\.\d+", (), None),
    "granian": Row(r"Granian", (), None),
    "bjoern": Row(None, (), "builtins.FileWrapper", "builtins.FileWrapper", stops=False,
                  sendfile=(OFFSET, REST), split=(0, SIZE - LENGTH)),
    "twisted": Row(None, (), None),
}
WITH_WRAPPER = [name for name in SERVERS if EXPECTED[name].wrapper is not None]
WITHOUT_WRAPPER = [name for name in SERVERS if EXPECTED[name].wrapper is None]

# strace's line for one call: sendfile(out_fd, in_fd, [offset] or NULL, count) = sent. NULL
# means "from the descriptor's current offset" (strace shows no position then).
_SENDFILE = re.compile(
    r"sendfile(?:64)?\(\d+, \d+, (?:NULL|\[(\d+)\](?: => \[\d+\])?), (\d+)\) = (\d+)")


def sendfile_calls(trace: str) -> list[tuple[int | None, int, int]]:
    """(offset or None for NULL, count, bytes sent) of every sendfile call in an strace log."""
    return [(int(m[1]) if m[1] is not None else None, int(m[2]), int(m[3]))
            for m in _SENDFILE.finditer(trace)]


@dataclass
class Sent:
    """What arrived for one response to a wrapped body: the declared body, where in the file
    it came from, the bytes that followed it on the connection, and the sendfile calls."""

    status: int
    body: bytes = field(repr=False)
    source: int | None  # file offset the body was cut from (None: not a slice of the file)
    overrun: int  # bytes after the declared body, before the next answer or EOF
    overrun_continues_file: bool  # those bytes are the file's next bytes
    second_intact: bool | None  # the next answer on the connection was clean (keep-alive)
    sendfile: list[tuple[int | None, int, int]]


@dataclass
class Observed:
    name: str
    facts: dict[str, Any]
    keeps_alive: bool
    sent: dict[str, Sent] = field(default_factory=dict)


def locate(body: bytes, data: bytes) -> int | None:
    """The offset in ``data`` where ``body`` starts (checked whole), or None."""
    if not body:
        return None
    at = data.find(body[:4096])
    return at if at >= 0 and data[at:at + len(body)] == body else None


def read_rest(sock: socket.socket, idle: float, limit: float) -> bytes:
    """Everything the server sends until it is quiet for ``idle`` seconds or closes."""
    out = b""
    deadline = time.monotonic() + limit
    sock.settimeout(idle)
    try:
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(1 << 16)
            except TimeoutError:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        sock.settimeout(30)
    return out


def wait_trace(trace: Path, seen: int) -> list[tuple[int | None, int, int]]:
    """The sendfile calls after the first ``seen``, once the log has been still for a while
    (strace writes a call's line after the bytes may already have arrived)."""
    last, still_since = None, time.monotonic()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        calls = sendfile_calls(trace.read_text())[seen:]
        if calls != last:
            last, still_since = calls, time.monotonic()
        elif time.monotonic() - still_since > 0.25:
            break
        time.sleep(0.05)
    return last or []


def probe(port: int, route: str, data: bytes, trace: Path, keepalive: bool) -> Sent:
    """GET ``route`` and read the declared body. On a keep-alive server a second request
    follows at once on the same connection, and whatever comes before its answer overran the
    first; elsewhere everything up to EOF did (no second request there: a server closing with
    unread input resets the connection and the overrun would be lost)."""
    seen = len(sendfile_calls(trace.read_text()))
    with RawClient(port, timeout=10) as client:
        resp: RawResponse = client.request(route)
        extra = client.buf
        client.buf = b""
        if keepalive:
            client.sock.sendall(b"GET /environ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                b"Connection: close\r\n\r\n")
        extra += read_rest(client.sock, idle=1.0, limit=10)
    answer = extra.find(b"HTTP/1.1 200 ") if keepalive else -1
    overrun = extra[:answer] if answer >= 0 else extra
    source = locate(resp.body, data)
    after = (source or 0) + len(resp.body)
    return Sent(
        status=resp.status, body=resp.body, source=source, overrun=len(overrun),
        overrun_continues_file=bool(overrun) and data[after:after + len(overrun)] == overrun,
        second_intact=extra.startswith(b"HTTP/1.1 200 ") if keepalive else None,
        sendfile=wait_trace(trace, seen))


def keeps_alive(port: int) -> bool:
    """Whether a second request on an HTTP/1.1 connection is answered. (Werkzeug's server,
    which answers ``Connection: close``, neither answers nor closes while the client keeps
    sending: it reads what follows a request until EOF before it closes. Hence the short
    wait.)"""
    with RawClient(port, timeout=10) as client:
        assert client.request("/environ").status == 200
        client.sock.settimeout(2)
        try:
            return client.request("/environ").status == 200
        except (ConnectionError, OSError, ValueError):
            return False


def observe(name: str, workdir: Path, data_file: Path, data: bytes) -> Observed:
    """Start ``name`` under strace serving ``rawapps.app``, probe every route, stop it."""
    sub = workdir / name
    sub.mkdir()
    sub.chmod(0o755)
    trace = sub / "trace.txt"
    server = launch(name, free_port(), sub, data_file, app=APP, strace=trace)
    try:
        with RawClient(server.port, timeout=10) as client:
            resp = client.request("/environ", {"Connection": "close"})
        assert resp.status == 200, resp
        seen = Observed(name, json.loads(resp.body), keeps_alive(server.port))
        if seen.facts["wrapper"] is not None:
            for route in ("/seeked", "/window", "/split"):
                seen.sent[route] = probe(server.port, route, data, trace, KEEPALIVE[name])
        return seen
    finally:
        server.stop()


# The shared directory, the data file, its bytes, and what each server was seen to do.
Lab = tuple[Path, Path, bytes, dict[str, Observed | BaseException]]


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    workdir = shared_dir("rangewsgi-wrappers-")
    path, data = write_data(workdir, SIZE)
    try:
        yield workdir, path, data, {}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def observation(lab: Lab, name: str) -> Observed:
    """The observation of server ``name``, made once per module run (a server that cannot be
    started, or is skipped, fails or skips every test about it without being tried again)."""
    workdir, path, data, cache = lab
    if name not in cache:
        try:
            cache[name] = observe(name, workdir, path, data)
        except BaseException as exc:
            cache[name] = exc
    seen = cache[name]
    if isinstance(seen, BaseException):
        raise seen
    return seen


@pytest.fixture
def observed(request: pytest.FixtureRequest, lab: Lab) -> Observed:
    return observation(lab, request.param)


@pytest.fixture(scope="module")
def data(lab: Lab) -> bytes:
    return lab[2]


# --- who the server is ------------------------------------------------------------------------

@pytest.mark.parametrize("observed", SERVERS, indirect=True)
def test_identity(observed: Observed) -> None:
    """SERVER_SOFTWARE, the keys that name the server, and the wrapper's class."""
    row = EXPECTED[observed.name]
    facts = observed.facts
    software = facts["SERVER_SOFTWARE"]
    if row.software is None:
        assert software is None
    else:
        assert software is not None and re.fullmatch(row.software, software), software
    assert set(row.keys) <= set(facts["keys"]), facts["keys"]
    wrapper = facts["wrapper"]
    if row.wrapper is None:
        assert wrapper is None and "wsgi.file_wrapper" not in facts["keys"]
    else:
        assert wrapper is not None
        assert (wrapper["name"], wrapper["makes"]) == (row.wrapper, row.makes), wrapper


def test_debian_gunicorn_is_20_1_0(lab: Lab) -> None:
    """The gunicorn20-sync process really runs Debian's gunicorn 20.1.0 on Debian's Python."""
    facts = observation(lab, "gunicorn20-sync").facts
    assert facts["SERVER_SOFTWARE"] == "gunicorn/20.1.0"
    assert facts["modules"]["gunicorn"] == "20.1.0"
    assert facts["executable"] == "/usr/bin/python3"


@pytest.mark.parametrize("observed", SERVERS, indirect=True)
def test_keepalive_table(observed: Observed) -> None:
    """``launch.KEEPALIVE`` says right whether the server answers a second request."""
    assert observed.keeps_alive == KEEPALIVE[observed.name]


# --- a real file seeked to OFFSET, Content-Length LENGTH ----------------------------------------

@pytest.mark.parametrize("observed", WITH_WRAPPER, indirect=True)
def test_seeked_file_offset(observed: Observed) -> None:
    """(a) The declared bytes come from the file's offset, or from byte 0."""
    row = EXPECTED[observed.name]
    sent = observed.sent["/seeked"]
    assert sent.status == 200 and len(sent.body) == LENGTH
    assert sent.source == (OFFSET if row.offset else 0), sent


@pytest.mark.parametrize("observed", WITH_WRAPPER, indirect=True)
def test_seeked_file_content_length(observed: Observed) -> None:
    """(b) Nothing after Content-Length bytes, or the rest of the file overruns it (and, on a
    keep-alive connection, comes before the next answer)."""
    row = EXPECTED[observed.name]
    sent = observed.sent["/seeked"]
    start = OFFSET if row.offset else 0
    assert sent.overrun == (0 if row.stops else SIZE - start - LENGTH), sent
    assert sent.overrun_continues_file == (not row.stops)
    if KEEPALIVE[observed.name]:
        assert sent.second_intact == row.stops


@pytest.mark.parametrize("observed", WITH_WRAPPER, indirect=True)
def test_seeked_file_sendfile(observed: Observed) -> None:
    """(c) sendfile(2): from which offset, how many bytes in all."""
    row = EXPECTED[observed.name]
    calls = observed.sent["/seeked"].sendfile
    if row.sendfile is None:
        assert calls == []
    else:
        assert calls, "no sendfile call"
        first, total = row.sendfile
        assert calls[0][0] == first and sum(c[2] for c in calls) == total, calls


# --- no fileno; a descriptor whose offset disagrees with tell() -------------------------------

@pytest.mark.parametrize("observed", WITH_WRAPPER, indirect=True)
def test_window_without_fileno(observed: Observed, data: bytes) -> None:
    """(d) A seekable file-like object without ``fileno`` is read: right bytes, nothing
    more, no sendfile."""
    sent = observed.sent["/window"]
    assert sent.status == 200 and sent.body == data[OFFSET:OFFSET + LENGTH]
    assert sent.overrun == 0 and sent.sendfile == []
    if KEEPALIVE[observed.name]:
        assert sent.second_intact


@pytest.mark.parametrize("observed", WITH_WRAPPER, indirect=True)
def test_split_position(observed: Observed) -> None:
    """Where the start comes from: the descriptor's OS offset (0 here) or ``tell()``/``read``
    (100000). A window of a file must agree in both."""
    row = EXPECTED[observed.name]
    sent = observed.sent["/split"]
    assert sent.status == 200 and len(sent.body) == LENGTH
    assert (sent.source, sent.overrun) == row.split, sent


# --- servers without a wrapper ----------------------------------------------------------------

@pytest.mark.parametrize("observed", WITHOUT_WRAPPER, indirect=True)
def test_no_file_wrapper(observed: Observed) -> None:
    """PEP 3333 makes ``wsgi.file_wrapper`` optional: these servers offer none."""
    assert observed.facts["wrapper"] is None
    assert "wsgi.file_wrapper" not in observed.facts["keys"]
