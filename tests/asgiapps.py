"""ASGI applications that the real servers in the ASGI tests load.

``app`` mounts one application per framework under its own prefix, each wrapped in the ASGI
``RangeMiddleware`` the way a user of that framework wires it:

- ``/raw/file`` (``http.response.pathsend`` where offered, else the bytes), ``/raw/gen``
  (a stream with a Content-Length), ``/raw/big`` (a large sparse file, for disconnects);
- ``/plain/text`` and ``/plain/stream``: a ``text/plain`` 200 without a length, and the same
  application bare under ``/bare``;
- ``/starlette/stream``, ``/starlette/file``, ``/starlette/bytes`` and the same three under
  ``/fastapi``: ``StreamingResponse``, ``FileResponse`` (which answers Range itself),
  ``Response``, with ``app.add_middleware(RangeMiddleware)``;
- ``/django/file`` (``FileResponse``), ``/django/stream`` (``StreamingHttpResponse`` with a
  Content-Length): ``RangeMiddleware(get_asgi_application())``;
- ``/quart/bytes``, ``/quart/stream``: ``app.asgi_app = RangeMiddleware(app.asgi_app)``;
- ``/litestar/file`` (``File``), ``/litestar/stream`` (``Stream``): ``RangeMiddleware(app)``;
- ``/starlette/task``, ``/fastapi/task``, ``/quart/task``, ``/litestar/task``, ``/django/task``:
  a stream of small blocks (more messages than the middleware drops before it raises) with
  the work each framework does after the response: a background task that deletes a
  temporary file made for the request (Starlette, FastAPI, Litestar), a FastAPI ``yield``
  dependency whose cleanup follows the ``yield`` without ``finally``, Quart's
  ``after_request`` and ``teardown_request`` and the stream's own ``finally``, Litestar's
  ``after_response`` hook, Django's ``request_finished``.

The file is named by ``RANGEWSGI_TEST_FILE`` (and the large one by ``RANGEWSGI_TEST_BIG``),
read on first use. Between the server and the applications, ``Recorder`` remembers the type
and size of every message each response sent to the server (``GET /_log`` returns and clears
them); ``GET /_proc`` gives the process id and the number of pending tasks, and
``GET /_state`` tells which data files are open, which tasks are inside the middleware, how
many Django requests began without finishing (Django's ``request_finished`` is sent by the
response's ``close()``), which after-response work is still pending (``PENDING``: begun minus
done, by name) and which temporary files are left, so that tests can see what the server was
handed and what was left behind. A request with the field
``x-test-spec-version`` reaches the applications with that ``asgi.spec_version`` in its scope,
as a server of that version would announce it.

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
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from rangewsgi.asgi import RangeMiddleware

FILE_ENV = "RANGEWSGI_TEST_FILE"
BIG_ENV = "RANGEWSGI_TEST_BIG"
NO_GC_ENV = "RANGEWSGI_TEST_NO_GC"
TMP_ENV = "RANGEWSGI_TEST_TMP"
CHUNK = 8192
SMALL_CHUNK = 1024  # the task routes' blocks: a 200 kB body is some 200 messages
SPEC_FIELD = b"x-test-spec-version"
PLAIN = b"hello world"
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


async def small_chunks(path: Path) -> AsyncIterator[bytes]:
    """The file in small blocks, as a generator of rows would send it."""
    data = path.read_bytes()
    for start in range(0, len(data), SMALL_CHUNK):
        yield data[start:start + SMALL_CHUNK]
        await asyncio.sleep(0)


# After-response work begun and not yet done, by name (``/_state`` shows the non-zero ones).
PENDING: dict[str, int] = {}


def begin(name: str) -> None:
    PENDING[name] = PENDING.get(name, 0) + 1


def done(name: str) -> None:
    PENDING[name] = PENDING.get(name, 0) - 1


def temp_file(name: str) -> Path:
    """A temporary file made for one request, which its background task deletes."""
    fd, path = tempfile.mkstemp(prefix=f"{name}-", dir=os.environ[TMP_ENV])
    os.close(fd)
    return Path(path)


def delete(path: Path) -> None:
    """The background task: delete the request's temporary file."""
    path.unlink()


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


async def plain(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """A 200 ``text/plain`` without a Content-Length: ``hello world`` in one message
    (``.../text``) or in several (``.../stream``). Served bare under ``/bare`` and through the
    middleware under ``/plain``: the server frames both alike."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    if scope["path"].endswith("/stream"):
        for piece in (b"hello ", b"world"):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    else:
        await send({"type": "http.response.body", "body": PLAIN})


# -- Starlette and FastAPI --


def starlette_app() -> ASGIApp:
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
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

    async def task(request: Any) -> Any:
        path = data_path()
        return StreamingResponse(small_chunks(path), headers=stream_headers(path),
                                 media_type="application/octet-stream",
                                 background=BackgroundTask(delete, temp_file("starlette")))

    app = Starlette(routes=[Route("/starlette/stream", stream), Route("/starlette/file", file),
                            Route("/starlette/bytes", whole), Route("/starlette/task", task)])
    app.add_middleware(RangeMiddleware)
    return app


def fastapi_app() -> ASGIApp:
    from fastapi import Depends, FastAPI
    from fastapi.responses import FileResponse, Response, StreamingResponse
    from starlette.background import BackgroundTask

    app = FastAPI()

    async def resource() -> AsyncIterator[str]:
        # Cleanup after the yield without try/finally, as many dependencies are written: it
        # runs only when the response ends without an exception.
        begin("fastapi dependency")
        yield "resource"
        done("fastapi dependency")

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

    @app.api_route("/fastapi/task", methods=["GET", "HEAD"])
    async def task(held: str = Depends(resource)) -> StreamingResponse:
        path = data_path()
        return StreamingResponse(small_chunks(path), headers=stream_headers(path),
                                 media_type="application/octet-stream",
                                 background=BackgroundTask(delete, temp_file("fastapi")))

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


def _django_task(request: Any) -> Any:
    from django.http import StreamingHttpResponse

    path = data_path()
    response = StreamingHttpResponse(small_chunks(path), content_type="application/octet-stream")
    for name, value in stream_headers(path).items():
        response[name] = value
    return response


def _urlpatterns() -> list[Any]:
    from django.urls import path

    return [path("django/file", _django_file), path("django/stream", _django_stream),
            path("django/task", _django_task)]


# -- Quart --


def quart_app() -> ASGIApp:
    from quart import Quart, Response, request

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

    @app.route("/quart/task")
    async def task() -> Any:
        begin("quart request")
        begin("quart stream")
        path = data_path()

        async def body() -> AsyncIterator[bytes]:
            try:
                async for block in small_chunks(path):
                    yield block
            finally:
                done("quart stream")

        return Response(body(), headers=stream_headers(path),
                        content_type="application/octet-stream")

    @app.after_request
    async def after(response: Any) -> Any:
        if request.path == "/quart/task":
            begin("quart teardown")
            done("quart request")
        return response

    @app.teardown_request
    async def teardown(exc: BaseException | None) -> None:
        if request.path == "/quart/task":
            done("quart teardown")

    app.asgi_app = RangeMiddleware(app.asgi_app)  # type: ignore[method-assign]
    return app


# -- Litestar --


def litestar_app() -> ASGIApp:
    from litestar import HttpMethod, Litestar, Request, route
    from litestar.background_tasks import BackgroundTask
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

    async def after_response(request: Request[Any, Any, Any]) -> None:
        done("litestar after_response")

    @route("/litestar/task", http_method=both, after_response=after_response)
    async def task() -> Stream:
        begin("litestar after_response")
        path = data_path()
        return Stream(small_chunks(path), headers=stream_headers(path),
                      media_type="application/octet-stream",
                      background=BackgroundTask(delete, temp_file("litestar")))

    # The annotations are strings here (PEP 563): Litestar resolves them in this namespace.
    return RangeMiddleware(Litestar(route_handlers=[file, stream, task],
                                    signature_namespace={"File": File, "Stream": Stream}))


# -- the dispatcher the servers load --

BUILDERS: dict[str, Callable[[], ASGIApp]] = {
    "starlette": starlette_app, "fastapi": fastapi_app, "django": django_app,
    "quart": quart_app, "litestar": litestar_app,
}


class Recorder:
    """Remember what each response sent to the server; serve ``/_log`` and ``/_state``."""

    def __init__(self) -> None:
        self.apps: dict[str, ASGIApp] = {"raw": RangeMiddleware(raw), "bare": plain,
                                         "plain": RangeMiddleware(plain)}
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
        if scope["path"] in ("/_log", "/_state", "/_proc"):
            reports = {"/_log": self._take, "/_state": _state, "/_proc": _proc}
            await _json(send, reports[scope["path"]]())
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

        for name, value in scope.get("headers") or ():
            if name == SPEC_FIELD:
                scope = {**scope, "asgi": {"version": "3.0", "spec_version": value.decode()}}
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
    """The data files open in this process, the tasks suspended inside the middleware, the
    Django requests not finished (their response never closed), the after-response work
    pending and the temporary files left."""
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
    pending = {name: count for name, count in PENDING.items() if count}
    temp = os.environ.get(TMP_ENV)
    left = sorted(os.listdir(temp)) if temp else []
    return {"open_files": open_files, "tasks": inside, "unfinished": unfinished,
            "pending": pending, "temp_files": left}


def _proc() -> dict[str, Any]:
    """The process that runs the applications (for ``/proc/PID/fd``) and its pending tasks."""
    return {"pid": os.getpid(), "tasks": len(asyncio.all_tasks())}


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
