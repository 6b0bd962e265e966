"""Serve the ASGI recipes of examples/recipes/ with real servers on 127.0.0.1 (stopped by PID).

``serve(recipe, port, data_file)`` runs one recipe under uvicorn (h11, asyncio) with
``$RANGEWSGI_EXAMPLE_FILE`` naming ``data_file``; ``serve_litestar_cli`` runs the Litestar recipe
the way its docstring says, with ``litestar --app ... run``. ``django_without_integration`` is
a uvicorn factory: the Django recipe's view and settings behind Django's own
``get_asgi_application()`` (the comparison that shows what ``rangewsgi.django_asgi`` adds).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import importlib.util
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server_configs.launch import require
from support import ROOT, Server, start_server

RECIPES_DIR = ROOT / "examples" / "recipes"
FILE_ENV = "RANGEWSGI_EXAMPLE_FILE"


@dataclass(frozen=True)
class AsgiRecipe:
    """A recipe file, the application uvicorn serves, and the packages it needs."""

    file: str
    target: str  # module:attribute, or a factory with factory=True
    needs: tuple[str, ...]
    factory: bool = False


RECIPES: dict[str, AsgiRecipe] = {
    "django": AsgiRecipe("django_asgi.py", "django_asgi:application", ("django",)),
    "fastapi": AsgiRecipe("fastapi_app.py", "fastapi_app:app", ("fastapi",)),
    "litestar": AsgiRecipe("litestar_app.py", "litestar_app:app", ("litestar",)),
    "quart": AsgiRecipe("quart_app.py", "quart_app:app", ("quart",)),
}
DJANGO_PLAIN = AsgiRecipe("django_asgi.py", "recipes_asgi_support:django_without_integration",
                          ("django",), factory=True)


def require_packages(recipe: AsgiRecipe) -> None:
    """Skip without uvicorn or the recipe's framework; in CI their absence fails."""
    for module in ("uvicorn", *recipe.needs):
        require(module, module, importlib.util.find_spec(module) is not None)


def _env(data_file: Path) -> dict[str, str]:
    path = os.pathsep.join([str(RECIPES_DIR), str(ROOT), str(ROOT / "tests")])
    return {FILE_ENV: str(data_file), "PYTHONPATH": path}


def uvicorn_cmd(recipe: AsgiRecipe, port: int) -> list[str]:
    """uvicorn (h11, asyncio) serving ``recipe`` on 127.0.0.1:``port``."""
    cmd = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
           "--http", "h11", "--loop", "asyncio", "--log-level", "warning", "--no-access-log"]
    return [*cmd, *(["--factory"] if recipe.factory else []), recipe.target]


def serve(recipe: AsgiRecipe, port: int, data_file: Path, workdir: Path) -> Server:
    """Start uvicorn serving ``recipe`` over ``data_file``; the caller stops it."""
    require_packages(recipe)
    log = workdir / f"{recipe.target.replace(':', '-')}.log"
    return start_server(uvicorn_cmd(recipe, port), port, env=_env(data_file), cwd=RECIPES_DIR,
                        log_path=log)


def serve_litestar_cli(port: int, data_file: Path, workdir: Path) -> Server:
    """``litestar --app litestar_app:app run`` (``python -m litestar``) over ``data_file``."""
    require_packages(RECIPES["litestar"])
    cmd = [sys.executable, "-m", "litestar", "--app", RECIPES["litestar"].target, "run",
           "--host", "127.0.0.1", "--port", str(port)]
    return start_server(cmd, port, env=_env(data_file), cwd=RECIPES_DIR,
                        log_path=workdir / "litestar-cli.log")


def django_without_integration() -> Any:
    """The Django recipe's view behind Django's own ASGI handler, in the same middleware."""
    from django.core.asgi import get_asgi_application

    from rangewsgi.asgi import RangeMiddleware

    importlib.import_module("django_asgi")  # settings, view and URLs of the recipe
    return RangeMiddleware(get_asgi_application())


def multipart_parts(body: bytes, content_type: str) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart/byteranges body as (lower-case fields, bytes), in order.

    Strict CRLF framing (RFC 2046 5.1.1), except that the CRLF after the close delimiter is
    optional there, and Starlette's FileResponse (FastAPI's recipe) leaves it out.
    """
    kind, _, params = content_type.partition(";")
    assert kind.strip() == "multipart/byteranges", content_type
    name, _, boundary = params.strip().partition("=")
    assert name == "boundary" and boundary and not boundary.startswith('"'), content_type
    delimiter = b"--" + boundary.encode("latin-1")
    close = b"\r\n" + delimiter + b"--"
    assert body.startswith(delimiter + b"\r\n"), body[:80]
    assert body.endswith(close) or body.endswith(close + b"\r\n"), body[-80:]
    inner = body[len(delimiter) + 2:body.rindex(close)]
    parts = []
    for chunk in inner.split(b"\r\n" + delimiter + b"\r\n"):
        head, _, data = chunk.partition(b"\r\n\r\n")
        fields = {}
        for line in head.split(b"\r\n"):
            key, _, value = line.decode("latin-1").partition(":")
            fields[key.strip().lower()] = value.strip()
        parts.append((fields, data))
    return parts


# --- Django, in a process of its own (Django's settings are global) ---------------------------

async def _run_asgi(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    """Call ``app`` with a GET and no body; the messages it sent."""
    sent: list[dict[str, Any]] = []
    requests = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if requests:
            return requests.pop()
        await asyncio.Event().wait()  # nothing more until the call is over (cancelled)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(dict(message))

    await app(scope, receive, send)
    return sent


def _scope(path: str, pathsend: bool) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1", "method": "GET", "scheme": "http", "path": path,
            "raw_path": path.encode(), "root_path": "", "query_string": b"",
            "headers": [(b"host", b"127.0.0.1")], "server": ("127.0.0.1", 80),
            "client": ("127.0.0.1", 5000),
            "extensions": {"http.response.pathsend": {}} if pathsend else {}}


def _summary(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """Message types, the start's status and fields, the body bytes and any path sent."""
    start = messages[0]
    return {"types": sorted({m["type"] for m in messages}),
            "status": start["status"],
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in start["headers"]],
            "body_sha": hashlib.sha256(b"".join(m.get("body", b"") for m in messages)).hexdigest(),
            "paths": [m["path"] for m in messages if m["type"] == "http.response.pathsend"]}


def django_checks() -> dict[str, Any]:
    """What ``rangewsgi.django_asgi`` does with Django's own responses, as JSON-able facts.

    Run with ``$RANGEWSGI_EXAMPLE_FILE`` set, in a process of its own: it loads the Django
    recipe (its settings and ``/video``) and adds a few views of its own to the URLconf.
    """
    recipe = importlib.import_module("django_asgi")
    from django.core.asgi import get_asgi_application as django_handler
    from django.core.signals import request_finished
    from django.http import FileResponse
    from django.urls import path as url

    from rangewsgi.django_asgi import get_asgi_application, pathsend_target

    data_file = Path(os.environ[FILE_ENV])
    opened: list[Any] = []
    finished: list[int] = []
    request_finished.connect(lambda **kwargs: finished.append(1), weak=False)

    def with_cookie(request: Any) -> Any:
        handle = open(data_file, "rb")  # noqa: SIM115  (Django closes it)
        opened.append(handle)
        response = FileResponse(handle, content_type="video/mp4", as_attachment=True,
                                filename="café video.mp4")
        response["X-Extra"] = "é"
        response.set_cookie("session", "abc", httponly=True, samesite="Lax")
        return response

    recipe.urlpatterns.append(url("cookie", with_cookie))

    def messages(app: Any, route: str, pathsend: bool) -> dict[str, Any]:
        finished.clear()
        summary = _summary(asyncio.run(_run_asgi(app, _scope(route, pathsend))))
        summary["finished"] = len(finished)
        summary["closed"] = all(handle.closed for handle in opened)
        return summary

    plain, integrated = django_handler(), get_asgi_application()
    cases = {f"{name}-{route}-{offered}": messages(app, f"/{route}", offered)
             for name, app in (("plain", plain), ("integrated", integrated))
             for route in ("video", "cookie") for offered in (True, False)}
    return {"cases": cases, "targets": _targets(data_file, FileResponse, pathsend_target)}


def _targets(data_file: Path, file_response: Any, target: Any) -> dict[str, Any]:
    """``pathsend_target`` of FileResponses that path-send must leave to Django."""
    def of(make: Any) -> Any:
        response = make()
        try:
            return target(response)
        finally:
            response.close()

    def at_offset() -> Any:
        handle = open(data_file, "rb")  # noqa: SIM115
        handle.seek(10)
        return file_response(handle)

    def compressed() -> Any:
        response = file_response(open(data_file, "rb"))  # noqa: SIM115
        response.streaming_content = iter([b"not the file"])  # as GZipMiddleware does
        return response

    def replaced() -> Any:
        name = data_file.with_name("moved.bin")
        name.write_bytes(b"old")
        response = file_response(open(name, "rb"))  # noqa: SIM115
        other = data_file.with_name("other.bin")
        other.write_bytes(b"new")
        os.replace(other, name)  # the name now names another file, of the same size
        return response

    def pipe() -> Any:
        read_end, write_end = os.pipe()
        os.close(write_end)
        return file_response(os.fdopen(read_end, "rb"))

    return {
        "whole": of(lambda: file_response(open(data_file, "rb"))),
        "relative": of(lambda: file_response(open(data_file.name, "rb"))),
        "offset": of(at_offset),
        "text": of(lambda: file_response(open(data_file, encoding="latin-1"))),
        "bytesio": of(lambda: file_response(io.BytesIO(b"0123456789"))),
        "compressed": of(compressed),
        "replaced": of(replaced),
        "pipe": of(pipe),
    }


def run_django_checks(data_file: Path) -> dict[str, Any]:
    """``django_checks()`` in a Python process of its own, run in ``data_file``'s folder."""
    code = "import json, recipes_asgi_support as s; print(json.dumps(s.django_checks()))"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **_env(data_file)},
                         cwd=data_file.parent, capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr[-4000:]
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result
