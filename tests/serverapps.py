"""WSGI applications that the real servers in the test suite load.

Every application here is wrapped in ``RangeMiddleware`` the way a user would wire it. The
file they serve is named by the environment variable ``RANGEWSGI_TEST_FILE`` (read on first
use, so importing this module never fails), which lets one server process serve a file that a
test wrote into its temporary directory.

Bodies offered by ``app`` (the plain WSGI application):

- ``/file``: ``environ['wsgi.file_wrapper']`` over the real file (zero-copy candidate);
- ``/gen``: a generator of chunks with a ``Content-Length``;
- ``/list``: a list of chunks with a ``Content-Length``.

All three carry a strong ``ETag`` and a ``Last-Modified`` so that ``If-Range`` can be evaluated
(RFC 9110 section 13.1.5). ``hostile`` answers ``/<kind>`` with one of the bodies in
``HOSTILE`` (compressed streams, archive members, in-memory files, a pipe, a procfs file, a
file longer than announced, a ``read`` that over-returns), each yielding the bytes the test
expects (``hostile_expected``). The framework applications (``flask_app``, ``django_app``, ...) are
wired as the README recipes say and mounted together under ``frameworks`` for one server.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import mmap
import os
import tarfile
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any, NamedTuple
from wsgiref.util import FileWrapper

from rangewsgi import RangeMiddleware

FILE_ENV = "RANGEWSGI_TEST_FILE"
CHUNK = 8192
StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def data_path() -> Path:
    """The file every application serves."""
    return Path(os.environ[FILE_ENV])


def etag_for(path: Path) -> str:
    """A strong validator that stays the same for as long as the file does (RFC 9110 8.8.3)."""
    st = path.stat()
    return f'"{st.st_size:x}-{st.st_mtime_ns:x}"'


def validators(path: Path) -> list[tuple[str, str]]:
    st = path.stat()
    return [("ETag", etag_for(path)),
            ("Last-Modified", formatdate(st.st_mtime, usegmt=True))]


def plain_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The application before any wrapping: 200 with the whole file, three body kinds."""
    path = data_path()
    size = path.stat().st_size
    headers = [("Content-Type", "application/octet-stream"),
               ("Content-Length", str(size)), *validators(path)]
    route = environ.get("PATH_INFO", "")
    if environ["REQUEST_METHOD"] == "HEAD" and route in ("/file", "/gen", "/list"):
        # Same headers as GET, no body (RFC 9110 9.3.2). Some servers (waitress) send whatever
        # body the application returns, so a well-behaved application returns none.
        start_response("200 OK", headers)
        return []
    if route == "/file":
        start_response("200 OK", headers)
        # PEP 3333: wsgi.file_wrapper is optional (cheroot and werkzeug's server lack it).
        wrapper = environ.get("wsgi.file_wrapper", FileWrapper)
        body: Iterable[bytes] = wrapper(open(path, "rb"), CHUNK)  # noqa: SIM115
        return body
    if route == "/gen":
        start_response("200 OK", headers)
        return _chunks(path)
    if route == "/list":
        data = path.read_bytes()
        start_response("200 OK", headers)
        return [data[i:i + 65536] for i in range(0, len(data), 65536)]
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
    return [b"not found"]


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


app = RangeMiddleware(plain_app)


# --- hostile bodies ---------------------------------------------------------------------------

PIPE_BYTES = 60_000  # below a pipe's default capacity (64 KiB): written before it is returned
PROC_FILE = "/proc/sys/kernel/ostype"  # procfs: st_size 0, known content
GROWN = 1000  # bytes a file grows by after the app has announced its length


def sibling(suffix: str) -> Path:
    """A file next to the data file: ``data.bin`` + ``suffix`` (written by the test)."""
    path = data_path()
    return path.with_name(path.name + suffix)


def hostile_expected(kind: str, data: bytes) -> bytes:
    """The bytes ``/<kind>`` must deliver when the data file holds ``data``."""
    if kind.startswith("pipe"):
        return data[:PIPE_BYTES]
    if kind == "procfs":
        return Path(PROC_FILE).read_bytes()
    return data


def write_hostile_files(data: bytes) -> None:
    """The compressed and archived copies of ``data`` the hostile bodies open."""
    for suffix, opener in ((".gz", gzip.open), (".bz2", bz2.open), (".xz", lzma.open)):
        with opener(sibling(suffix), "wb") as out:
            out.write(data)
    with tarfile.open(sibling(".tar"), "w") as tar:
        info = tarfile.TarInfo("member.bin")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with zipfile.ZipFile(sibling(".zip"), "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("member.bin", data)
    for suffix in (".gz", ".bz2", ".xz", ".tar", ".zip"):
        sibling(suffix).chmod(0o644)


class OverReturning(io.RawIOBase):
    """A seekable reader whose ``read(n)`` returns the whole rest of the data, whatever n."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = [offset, self.pos + offset, len(self.data) + offset][whence]
        return self.pos

    def tell(self) -> int:
        return self.pos

    def read(self, size: int | None = -1) -> bytes:
        out = self.data[self.pos:]
        self.pos = len(self.data)
        return out


def _pipe() -> Any:
    read_fd, write_fd = os.pipe()
    with open(write_fd, "wb") as out:
        out.write(data_path().read_bytes()[:PIPE_BYTES])
    return open(read_fd, "rb")


def _grown() -> Any:
    """A plain file that holds more than the length the app announces."""
    fh = tempfile.TemporaryFile()  # noqa: SIM115
    fh.write(data_path().read_bytes() + b"x" * GROWN)
    fh.seek(0)
    return fh


def _compressed(opener: Callable[..., Any], suffix: str) -> Callable[[], Any]:
    """``opener(data.bin + suffix, "rb")``, made per request: a decompressing reader."""
    return lambda: opener(sibling(suffix), "rb")


def _member(archive: str) -> Any:
    """``member.bin`` of the tar or zip copy: a reader over part of the archive file."""
    if archive == ".tar":
        return tarfile.open(sibling(archive)).extractfile("member.bin")
    return zipfile.ZipFile(sibling(archive)).open("member.bin")


def _sniffed() -> Any:
    """The data file after the app read its first bytes and seeked back (within the read
    buffer: the descriptor's offset stays at the buffer's end)."""
    fh = open(data_path(), "rb")  # noqa: SIM115
    fh.read(16)
    fh.seek(0)
    return fh


def _mapped() -> Any:
    with open(data_path(), "rb") as fh:
        return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)


def _spooled() -> Any:
    spooled = tempfile.SpooledTemporaryFile(max_size=1 << 24)  # noqa: SIM115
    spooled.write(data_path().read_bytes())
    spooled.seek(0)
    return spooled


class Hostile(NamedTuple):
    """How the app answers one kind: the body object, and what it says about it."""

    make: Callable[[], Any]
    wrap: bool = True  # handed to wsgi.file_wrapper (else returned as the body itself)
    announce: bool = False  # with a Content-Length
    etag: bool = False  # with a strong ETag (the 200 is then decided from the headers)


# Compressed streams come bare (the app returns ``gzip.open(path)``) and wrapped.
HOSTILE: dict[str, Hostile] = {
    "gzip": Hostile(_compressed(gzip.open, ".gz"), wrap=False, announce=True),
    "gzip-wrapped": Hostile(_compressed(gzip.open, ".gz"), announce=True),
    "gzip-etag": Hostile(_compressed(gzip.open, ".gz"), announce=True, etag=True),
    "bz2": Hostile(_compressed(bz2.open, ".bz2"), wrap=False, announce=True),
    "lzma": Hostile(_compressed(lzma.open, ".xz"), announce=True),
    "tar": Hostile(lambda: _member(".tar")),
    "zip": Hostile(lambda: _member(".zip"), announce=True),
    "spooled": Hostile(_spooled),
    "bytesio": Hostile(lambda: io.BytesIO(data_path().read_bytes())),
    "mmap": Hostile(_mapped),
    "pipe": Hostile(_pipe, wrap=False, announce=True),
    "pipe-wrapped": Hostile(_pipe, announce=True),
    "procfs": Hostile(lambda: open(PROC_FILE, "rb")),  # noqa: SIM115
    "grown": Hostile(_grown, announce=True),
    "sniffed": Hostile(_sniffed),
    "over-returning": Hostile(lambda: OverReturning(data_path().read_bytes())),
}


def hostile_plain(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """``/<kind>``: a 200 whose body is the hostile object of that kind."""
    kind = environ.get("PATH_INFO", "").strip("/")
    entry = HOSTILE.get(kind)
    if entry is None:
        start_response("404 Not Found", [("Content-Type", "text/plain"),
                                         ("Content-Length", "9")])
        return [b"not found"]
    headers = [("Content-Type", "application/octet-stream")]
    if entry.announce:
        size = len(hostile_expected(kind, data_path().read_bytes()))
        headers.append(("Content-Length", str(size)))
    if entry.etag:
        headers.append(("ETag", f'"{kind}-{etag_for(data_path()).strip(chr(34))}"'))
    start_response("200 OK", headers)
    body = entry.make()
    if entry.wrap:
        body = environ.get("wsgi.file_wrapper", FileWrapper)(body, CHUNK)
    return body  # type: ignore[no-any-return]


hostile = RangeMiddleware(hostile_plain)


class Lazy:
    """A WSGI application built on its first request (settings need the environment first)."""

    def __init__(self, factory: Callable[[], WSGIApp]) -> None:
        self.factory = factory
        self.app: WSGIApp | None = None
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if self.app is None:
            with self.lock:
                if self.app is None:
                    self.app = self.factory()
        return self.app(environ, start_response)


# --- Flask ------------------------------------------------------------------------------------

def make_flask(ranged: bool = True) -> Any:
    """Flask, wired as the README says: ``app.wsgi_app = RangeMiddleware(app.wsgi_app)``."""
    from flask import Flask, Response, request, send_file
    from werkzeug.wsgi import wrap_file

    fapp = Flask("rangewsgi_flask")

    @fapp.route("/response-file")
    def response_file() -> Response:
        path = data_path()
        body = wrap_file(request.environ, open(path, "rb"))  # noqa: SIM115
        resp = Response(body, mimetype="application/octet-stream", direct_passthrough=True)
        resp.headers["Content-Length"] = str(path.stat().st_size)
        resp.headers["ETag"] = etag_for(path)
        return resp

    @fapp.route("/response-gen")
    def response_gen() -> Response:
        path = data_path()
        resp = Response(_chunks(path), mimetype="application/octet-stream")
        resp.headers["Content-Length"] = str(path.stat().st_size)
        resp.headers["ETag"] = etag_for(path)
        return resp

    @fapp.route("/send-file")
    def send_plain() -> Response:
        return send_file(data_path(), mimetype="application/octet-stream", conditional=False)

    @fapp.route("/send-file-conditional")
    def send_conditional() -> Response:
        return send_file(data_path(), mimetype="application/octet-stream", conditional=True)

    if ranged:
        fapp.wsgi_app = RangeMiddleware(fapp.wsgi_app)  # type: ignore[method-assign]
    return fapp


# --- Django -----------------------------------------------------------------------------------

urlpatterns: list[Any] = []


def make_django(ranged: bool = True) -> WSGIApp:
    """Django, wired as the README says: ``RangeMiddleware(get_wsgi_application())``."""
    import django
    from django.conf import settings
    from django.core.wsgi import get_wsgi_application
    from django.http import FileResponse, HttpRequest, HttpResponse
    from django.urls import path as url
    from django.views.decorators.gzip import gzip_page
    from django.views.static import serve

    if not settings.configured:
        settings.configure(
            DEBUG=False, ALLOWED_HOSTS=["*"], SECRET_KEY="rangewsgi-tests",
            ROOT_URLCONF=__name__, MIDDLEWARE=[], INSTALLED_APPS=[], USE_TZ=True)
        django.setup()

    def file_response(request: HttpRequest) -> FileResponse:
        path = data_path()
        resp = FileResponse(open(path, "rb"), content_type="application/octet-stream")  # noqa: SIM115
        resp["ETag"] = etag_for(path)
        return resp

    def file_response_bare(request: HttpRequest) -> FileResponse:
        # What Django users write: no ETag, no Last-Modified; the middleware adds both.
        return FileResponse(open(data_path(), "rb"),
                            content_type="application/octet-stream")

    def static(request: HttpRequest) -> Any:
        path = data_path()
        return serve(request, path.name, document_root=str(path.parent))

    def text(request: HttpRequest) -> HttpResponse:
        # A strong ETag from the view; GZipMiddleware weakens it (W/) when it compresses.
        resp = HttpResponse(make_text(), content_type="text/plain; charset=utf-8")
        resp["ETag"] = f'"text-{TEXT_SIZE}"'
        resp["Content-Length"] = str(TEXT_SIZE)  # GZipMiddleware replaces it when it compresses
        return resp

    urlpatterns[:] = [url("file-response", file_response), url("static", static),
                      url("file-response-bare", file_response_bare),
                      url("gzip-page", gzip_page(text))]
    wsgi = get_wsgi_application()
    return RangeMiddleware(wsgi) if ranged else wsgi


# --- Content codings ---------------------------------------------------------------------------

TEXT_SIZE = 400_000


def make_text(size: int = TEXT_SIZE) -> bytes:
    """Text that gzip shrinks to about half (hex digits): a gzip stream of some 200 KB."""
    import random

    return random.Random(8_4).randbytes(size // 2).hex().encode()


def precompressed_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """``/text.gz``: ``data.bin.txt.gz`` from disk with ``Content-Encoding: gzip`` and no
    validator, as nginx ``gzip_static`` or WhiteNoise serve a precompressed file;
    ``?etag=weak`` adds a weak ETag."""
    path = sibling(".txt.gz")
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Encoding", "gzip"),
               ("Vary", "Accept-Encoding")]
    if "etag=weak" in environ.get("QUERY_STRING", ""):
        headers.append(("ETag", 'W/"text"'))
    start_response("200 OK", headers)
    return environ.get("wsgi.file_wrapper", FileWrapper)(open(path, "rb"), CHUNK)


# --- HEAD -----------------------------------------------------------------------------------

def head_plain(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Answers to HEAD as to GET, body included (the server drops it, RFC 9110 9.3.2):

    - ``/hello``: ``[b"hello world"]`` without Content-Length (passed through);
    - ``/gen``: a generator of two chunks without Content-Length (passed through);
    - ``/file``: the data file through ``wsgi.file_wrapper``, no Content-Length (a full 200
      the middleware completes: Content-Length, Accept-Ranges, ETag, Last-Modified);
    - ``/tagged``: ``[b"hello world"]`` with a strong ETag (304 for If-None-Match).
    """
    route = environ.get("PATH_INFO", "")
    text = [("Content-Type", "text/plain")]
    if route == "/hello":
        start_response("200 OK", text)
        return [b"hello world"]
    if route == "/gen":
        start_response("200 OK", text)
        return iter([b"hello", b" world"])
    if route == "/file":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ.get("wsgi.file_wrapper", FileWrapper)(open(data_path(), "rb"), CHUNK)
    if route == "/tagged":
        start_response("200 OK", [*text, ("ETag", '"hello-1"')])
        return [b"hello world"]
    start_response("404 Not Found", [*text, ("Content-Length", "9")])
    return [b"not found"]


def make_head() -> WSGIApp:
    """``/bare/<route>``: ``head_plain`` alone; ``/wrapped/<route>``: in the middleware."""
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    mounts = {"/bare": head_plain, "/wrapped": RangeMiddleware(head_plain)}
    return DispatcherMiddleware(plain_app, mounts)


head = Lazy(make_head)


# --- Bottle -----------------------------------------------------------------------------------

def make_bottle(ranged: bool = True) -> WSGIApp:
    """Bottle, wired as the README says: wrap the Bottle application object."""
    import bottle

    bapp = bottle.Bottle()

    @bapp.route("/static")  # type: ignore[untyped-decorator]
    def static() -> Any:
        path = data_path()
        return bottle.static_file(path.name, root=str(path.parent),
                                  mimetype="application/octet-stream")

    @bapp.route("/plain-file")  # type: ignore[untyped-decorator]
    def plain_file() -> Any:
        path = data_path()
        bottle.response.content_type = "application/octet-stream"
        bottle.response.set_header("Content-Length", str(path.stat().st_size))
        bottle.response.set_header("ETag", etag_for(path))
        return open(path, "rb")

    return RangeMiddleware(bapp) if ranged else bapp


# --- Pyramid ----------------------------------------------------------------------------------

def make_pyramid(ranged: bool = True) -> WSGIApp:
    """Pyramid, wired as the README says: wrap the application made by ``make_wsgi_app()``."""
    from pyramid.config import Configurator
    from pyramid.request import Request
    from pyramid.response import FileResponse

    def file_view(request: Request) -> FileResponse:
        path = data_path()
        resp = FileResponse(str(path), request=request,
                            content_type="application/octet-stream")
        resp.etag = etag_for(path).strip('"')
        return resp

    def plain_file_view(request: Request) -> FileResponse:
        # WebOb answers Range itself for conditional responses (one range only); turning
        # that off leaves every range to the middleware.
        resp = file_view(request)
        resp.conditional_response = False
        return resp

    with Configurator() as config:
        config.add_route("file", "/file-response")
        config.add_view(file_view, route_name="file")
        config.add_route("plain", "/file-response-plain")
        config.add_view(plain_file_view, route_name="plain")
        papp = config.make_wsgi_app()
    return RangeMiddleware(papp) if ranged else papp


# --- Falcon -----------------------------------------------------------------------------------

def make_falcon(ranged: bool = True) -> WSGIApp:
    """Falcon, wired as the README says: wrap the ``falcon.App`` object."""
    import falcon

    class Stream:
        def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
            path = data_path()
            resp.content_type = "application/octet-stream"
            resp.stream = open(path, "rb")  # noqa: SIM115
            resp.content_length = path.stat().st_size
            resp.etag = etag_for(path)

        def on_head(self, req: falcon.Request, resp: falcon.Response) -> None:
            path = data_path()
            resp.content_type = "application/octet-stream"
            resp.content_length = path.stat().st_size
            resp.etag = etag_for(path)

    fapp: Any = falcon.App()
    fapp.add_route("/stream", Stream())
    return RangeMiddleware(fapp) if ranged else fapp


FACTORIES: dict[str, Callable[[bool], Any]] = {
    "flask": make_flask, "django": make_django, "bottle": make_bottle,
    "pyramid": make_pyramid, "falcon": make_falcon,
}


def make_frameworks() -> WSGIApp:
    """Every framework application, each wired by its recipe, mounted under /<name>."""
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    mounts = {f"/{name}": factory(True) for name, factory in FACTORIES.items()}
    return DispatcherMiddleware(plain_app, mounts)


frameworks = Lazy(make_frameworks)


def make_encoded() -> WSGIApp:
    """Coded content: ``/static/text.gz`` (``precompressed_app``, a file from disk) and
    ``/django/gzip-page`` (Django's GZipMiddleware, compressed per request), both wrapped."""
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    mounts = {"/static": RangeMiddleware(precompressed_app), "/django": make_django(True)}
    return DispatcherMiddleware(plain_app, mounts)


encoded = Lazy(make_encoded)
