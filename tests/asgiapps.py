"""ASGI applications that the real servers in the ASGI tests load.

``app`` mounts one application per framework under its own prefix, each wrapped in the ASGI
``RangeMiddleware`` the way a user of that framework wires it:

- ``/raw/file`` (``http.response.pathsend`` where offered, else the bytes), ``/raw/gen``
  (a stream with a Content-Length), ``/raw/big`` (a large sparse file, for disconnects);
- ``/starlette/stream``, ``/starlette/file``, ``/starlette/bytes`` and the same three under
  ``/fastapi``: ``StreamingResponse``, ``FileResponse`` (which answers Range itself),
  ``Response``, with ``app.add_middleware(RangeMiddleware)``;
- ``/django/file`` (``FileResponse``), ``/django/stream`` (``StreamingHttpResponse`` with a
  Content-Length): ``RangeMiddleware(get_asgi_application())``;
- ``/quart/bytes``, ``/quart/stream``: ``app.asgi_app = RangeMiddleware(app.asgi_app)``;
- ``/litestar/file`` (``File``), ``/litestar/stream`` (``Stream``): ``RangeMiddleware(app)``.

The file is named by ``RANGEWSGI_TEST_FILE`` (and the large one by ``RANGEWSGI_TEST_BIG``),
read on first use. Between the server and the applications, ``Recorder`` remembers the type
and size of every message each response sent to the server (``GET /_log`` returns and clears
them) and ``GET /_state`` tells which data files are open and which tasks are inside the
middleware, and how many Django requests began without finishing (Django's
``request_finished`` is sent by the response's ``close()``), so that tests can see what the
server was handed and what was left behind.

With ``RANGEWSGI_TEST_NO_GC`` set, the cyclic garbage collector is off in the server process:
a file that only a collection would close (a response whose cleanup was skipped, kept alive by
a reference cycle) then stays open where ``/_state`` sees it, every time, instead of only when
no collection happened to run in time.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from rangewsgi.asgi import RangeMiddleware

FILE_ENV = "RANGEWSGI_TEST_FILE"
BIG_ENV = "RANGEWSGI_TEST_BIG"
NO_GC_ENV = "RANGEWSGI_TEST_NO_GC"
CHUNK = 8192
ETAG_STREAM = '"stream-v1"'
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]


def data_path() -> Path:
    return Path(os.environ[FILE_ENV])


def big_path() -> Path:
    return Path(os.environ[BIG_ENV])


def chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as file:
        while block := file.read(CHUNK):
            yield block


async def achunks(path: Path) -> AsyncIterator[bytes]:
    """The file in blocks, read at once: a stream stopped half way holds no file open."""
    data = path.read_bytes()
    for start in range(0, len(data), CHUNK):
        yield data[start:start + CHUNK]
        await asyncio.sleep(0)


def stream_headers(path: Path) -> dict[str, str]:
    """What a streamed body carries: its length and the app's own strong validator."""
    return {"content-length": str(path.stat().st_size), "etag": ETAG_STREAM}


# -- a raw ASGI application --


async def raw(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    route = scope["path"].removeprefix("/raw")
    path = big_path() if route == "/big" else data_path()
    size = path.stat().st_size
    headers = [(b"content-type", b"application/octet-stream"),
               (b"content-length", str(size).encode())]
    if route == "/gen":
        headers.append((b"etag", ETAG_STREAM.encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if route in ("/file", "/big") and "http.response.pathsend" in scope.get("extensions", {}):
        await send({"type": "http.response.pathsend", "path": str(path)})
        return
    for block in chunks(path):
        await send({"type": "http.response.body", "body": block, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


# -- Starlette and FastAPI --


def starlette_app() -> ASGIApp:
    from starlette.applications import Starlette
    from starlette.responses import FileResponse, Response, StreamingResponse
    from starlette.routing import Route

    async def stream(request: Any) -> Any:
        path = data_path()
        return StreamingResponse(achunks(path), headers=stream_headers(path),
                                 media_type="application/octet-stream")

    async def file(request: Any) -> Any:
        return FileResponse(data_path(), media_type="application/octet-stream")

    async def whole(request: Any) -> Any:
        return Response(data_path().read_bytes(), headers={"etag": ETAG_STREAM},
                        media_type="application/octet-stream")

    app = Starlette(routes=[Route("/starlette/stream", stream), Route("/starlette/file", file),
                            Route("/starlette/bytes", whole)])
    app.add_middleware(RangeMiddleware)
    return app


def fastapi_app() -> ASGIApp:
    from fastapi import FastAPI
    from fastapi.responses import FileResponse, Response, StreamingResponse

    app = FastAPI()

    @app.api_route("/fastapi/stream", methods=["GET", "HEAD"])
    async def stream() -> StreamingResponse:
        path = data_path()
        return StreamingResponse(achunks(path), headers=stream_headers(path),
                                 media_type="application/octet-stream")

    @app.api_route("/fastapi/file", methods=["GET", "HEAD"])
    async def file() -> FileResponse:
        return FileResponse(data_path(), media_type="application/octet-stream")

    @app.api_route("/fastapi/bytes", methods=["GET", "HEAD"])
    async def whole() -> Response:
        return Response(data_path().read_bytes(), headers={"etag": ETAG_STREAM},
                        media_type="application/octet-stream")

    app.add_middleware(RangeMiddleware)
    return app


# -- Django --


def django_app() -> ASGIApp:
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(DEBUG=False, ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__,
                           SECRET_KEY="rangewsgi-tests", INSTALLED_APPS=[],
                           MIDDLEWARE=[], USE_TZ=True)
        django.setup()
    from django.core.asgi import get_asgi_application
    from django.core.signals import request_finished, request_started

    request_started.connect(_django_started, weak=False)
    request_finished.connect(_django_finished, weak=False)

    return RangeMiddleware(get_asgi_application())


DJANGO_REQUESTS = {"started": 0, "finished": 0}


def _django_started(**kwargs: Any) -> None:
    DJANGO_REQUESTS["started"] += 1


def _django_finished(**kwargs: Any) -> None:
    DJANGO_REQUESTS["finished"] += 1


def _django_file(request: Any) -> Any:
    from django.http import FileResponse

    response = FileResponse(open(data_path(), "rb"),  # noqa: SIM115
                            content_type="application/octet-stream")
    response["ETag"] = ETAG_STREAM
    return response


def _django_stream(request: Any) -> Any:
    from django.http import StreamingHttpResponse

    path = data_path()
    response = StreamingHttpResponse(achunks(path), content_type="application/octet-stream")
    for name, value in stream_headers(path).items():
        response[name] = value
    return response


def _urlpatterns() -> list[Any]:
    from django.urls import path

    return [path("django/file", _django_file), path("django/stream", _django_stream)]


# -- Quart --


def quart_app() -> ASGIApp:
    from quart import Quart, Response

    app = Quart(__name__)

    @app.route("/quart/bytes")
    async def whole() -> Any:
        return Response(data_path().read_bytes(), headers={"etag": ETAG_STREAM},
                        content_type="application/octet-stream")

    @app.route("/quart/stream")
    async def stream() -> Any:
        path = data_path()
        return Response(achunks(path), headers=stream_headers(path),
                        content_type="application/octet-stream")

    app.asgi_app = RangeMiddleware(app.asgi_app)  # type: ignore[method-assign]
    return app


# -- Litestar --


def litestar_app() -> ASGIApp:
    from litestar import HttpMethod, Litestar, route
    from litestar.response import File, Stream

    both = [HttpMethod.GET, HttpMethod.HEAD]

    @route("/litestar/file", http_method=both)
    async def file() -> File:
        return File(data_path(), media_type="application/octet-stream",
                    content_disposition_type="inline", headers={"etag": ETAG_STREAM})

    @route("/litestar/stream", http_method=both)
    async def stream() -> Stream:
        path = data_path()
        return Stream(achunks(path), headers=stream_headers(path),
                      media_type="application/octet-stream")

    # The annotations are strings here (PEP 563): Litestar resolves them in this namespace.
    return RangeMiddleware(Litestar(route_handlers=[file, stream],
                                    signature_namespace={"File": File, "Stream": Stream}))


# -- the dispatcher the servers load --

BUILDERS: dict[str, Callable[[], ASGIApp]] = {
    "starlette": starlette_app, "fastapi": fastapi_app, "django": django_app,
    "quart": quart_app, "litestar": litestar_app,
}


class Recorder:
    """Remember what each response sent to the server; serve ``/_log`` and ``/_state``."""

    def __init__(self) -> None:
        self.apps: dict[str, ASGIApp] = {"raw": RangeMiddleware(raw)}
        self.log: list[dict[str, Any]] = []

    def _app(self, prefix: str) -> ASGIApp:
        if prefix not in self.apps:
            self.apps[prefix] = BUILDERS[prefix]()
        return self.apps[prefix]

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["path"] in ("/_log", "/_state"):
            await _json(send, self._take() if scope["path"] == "/_log" else _state())
            return
        entry: dict[str, Any] = {"method": scope["method"], "path": scope["path"],
                                 "messages": []}
        self.log.append(entry)

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            body = message.get("body", b"")
            entry["messages"].append([message["type"], len(body),
                                      bool(message.get("more_body", False))])
            await send(message)

        prefix = scope["path"].split("/")[1]
        await self._app(prefix)(scope, receive, recording_send)

    def _take(self) -> list[dict[str, Any]]:
        taken, self.log = self.log, []
        return taken


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _state() -> dict[str, Any]:
    """The data files open in this process, the tasks suspended inside the middleware, and
    the Django requests not finished (their response never closed)."""
    names = {os.environ.get(FILE_ENV), os.environ.get(BIG_ENV)} - {None}
    open_files = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target in names:
            open_files.append(target)
    inside = []
    for task in asyncio.all_tasks():
        frames = task.get_stack()
        if any(f.f_code.co_filename.endswith(("rangewsgi/asgi.py", "rangewsgi/asgi_bodies.py"))
               for f in frames):
            inside.append(repr(task.get_coro()))
    unfinished = DJANGO_REQUESTS["started"] - DJANGO_REQUESTS["finished"]
    return {"open_files": open_files, "tasks": inside, "unfinished": unfinished}


async def _json(send: Send, value: Any) -> None:
    body = json.dumps(value).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def __getattr__(name: str) -> Any:
    """Django's ``ROOT_URLCONF`` is this module: its ``urlpatterns``, made on first use."""
    if name == "urlpatterns":
        return _urlpatterns()
    raise AttributeError(name)


if os.environ.get(NO_GC_ENV):
    gc.disable()
app = Recorder()
