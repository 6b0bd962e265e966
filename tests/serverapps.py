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
(RFC 9110 section 13.1.5). The framework applications (``flask_app``, ``django_app``, ...) are
wired as the README recipes say and mounted together under ``frameworks`` for one server.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any
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
    from django.http import FileResponse, HttpRequest
    from django.urls import path as url
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

    urlpatterns[:] = [url("file-response", file_response), url("static", static),
                      url("file-response-bare", file_response_bare)]
    wsgi = get_wsgi_application()
    return RangeMiddleware(wsgi) if ranged else wsgi


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
