"""The same requests through both adapters give the same answers: status, fields (Date and
the multipart boundary aside) and bytes, for every body kind; apps that answer ranges
themselves (Flask ``send_file``, Starlette ``FileResponse``) agree on status and bytes; and
each adapter refuses the other's kind of app when it is made."""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from adapters_matrix import (
    BODY_KINDS,
    DATA,
    REQUESTS,
    Answer,
    asgi_app,
    call_asgi,
    call_wsgi,
    etag_of,
    parts,
    request_fields,
    wsgi_app,
    wsgi_head_body,
)

from rangewsgi import RangeMiddleware as WSGIRangeMiddleware
from rangewsgi.asgi import RangeMiddleware as ASGIRangeMiddleware


@pytest.fixture
def data_path(tmp_path: Path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(DATA)
    return path


MATRIX = list(itertools.product(("GET", "HEAD"), REQUESTS, BODY_KINDS))


@pytest.mark.parametrize(("method", "request_name", "kind"), MATRIX)
def test_both_adapters_answer_alike(data_path: Path, method: str, request_name: str,
                                    kind: str) -> None:
    fields = request_fields(request_name, etag_of(kind, data_path))
    wsgi = call_wsgi(WSGIRangeMiddleware(wsgi_app(kind, data_path)), method, fields)
    if method == "HEAD":
        wsgi = wsgi_head_body(wsgi)
    pathsends = (True, False) if kind == "file" else (True,)
    for pathsend in pathsends:
        asgi = call_asgi(ASGIRangeMiddleware(asgi_app(kind, data_path)), method, fields,
                         pathsend=pathsend)
        assert asgi == wsgi, (pathsend, asgi.status, wsgi.status)
    check_bytes(wsgi, method, request_name)


def check_bytes(answer: Answer, method: str, request_name: str) -> None:
    """The agreed answer is also the right one (RFC 9110 14, 13.2.2)."""
    if method == "HEAD":
        # 14.2: a HEAD is never ranged; a 304 or 412 still holds (13.2.2).
        expected_status = {"if-none-match": 304, "if-match fails": 412}.get(request_name, 200)
        assert answer.status == expected_status and answer.body == b""
        assert answer.field("content-range") is None
        return
    expected: dict[str, tuple[int, bytes]] = {
        "no range": (200, DATA), "single": (206, DATA[10:100]), "suffix": (206, DATA[-100:]),
        "unsatisfiable": (416, b"416 Range Not Satisfiable\n"),
        "if-range match": (206, DATA[10:20]), "if-range mismatch": (200, DATA),
        "if-none-match": (304, b""), "if-match fails": (412, b"412 Precondition Failed\n"),
    }
    if request_name == "multi":
        assert answer.status == 206
        assert parts(answer) == [(f"bytes 0-9/{len(DATA)}", DATA[0:10]),
                                 (f"bytes 500-599/{len(DATA)}", DATA[500:600])]
        return
    status, body = expected[request_name]
    assert (answer.status, answer.body) == (status, body)


# -- HEAD with Range: never ranged, on either adapter (RFC 9110 14.2) --

def flask_app(path: Path) -> Any:
    from flask import Flask, send_file

    app = Flask("matrix")

    @app.route("/", methods=["GET", "HEAD"])
    def video() -> Any:
        return send_file(path, mimetype="application/octet-stream", conditional=True)

    return app


def starlette_app(path: Path) -> Any:
    from starlette.applications import Starlette
    from starlette.responses import FileResponse
    from starlette.routing import Route

    async def video(request: Any) -> FileResponse:
        return FileResponse(path, media_type="application/octet-stream")

    return Starlette(routes=[Route("/", video, methods=["GET", "HEAD"])])


def test_head_with_range_is_not_ranged_by_a_range_aware_wsgi_app(data_path: Path) -> None:
    # Flask's send_file(conditional=True) ranges by itself: shown a HEAD's Range, it answered
    # 206 with a Content-Range under the WSGI middleware.
    answer = call_wsgi(WSGIRangeMiddleware(flask_app(data_path)), "HEAD",
                       {"Range": "bytes=0-9"})
    assert answer.status == 200
    assert answer.field("content-range") is None
    assert answer.field("content-length") == str(len(DATA))
    # The GET is still ranged, by Flask (the middleware passes a 206 through).
    got = call_wsgi(WSGIRangeMiddleware(flask_app(data_path)), "GET", {"Range": "bytes=0-9"})
    assert (got.status, got.body) == (206, DATA[:10])


FRAMEWORK_REQUESTS = ["no range", "single", "suffix", "unsatisfiable", "if-range match",
                      "if-range mismatch", "if-none-match"]


def framework_etag(answer: Answer) -> str:
    etag = answer.field("etag")
    assert etag is not None
    return etag


@pytest.mark.parametrize(("method", "request_name"),
                         list(itertools.product(("GET", "HEAD"), FRAMEWORK_REQUESTS)))
def test_flask_and_starlette_file_responses_agree(data_path: Path, method: str,
                                                  request_name: str) -> None:
    wsgi_mw = WSGIRangeMiddleware(flask_app(data_path))
    asgi_mw = ASGIRangeMiddleware(starlette_app(data_path))
    # Each framework's own tag, as a client would have it from the first 200.
    wsgi_tag = framework_etag(call_wsgi(wsgi_mw, "GET", {}))
    asgi_tag = framework_etag(call_asgi(asgi_mw, "GET", {}))
    wsgi = call_wsgi(wsgi_mw, method, request_fields(request_name, wsgi_tag))
    asgi = call_asgi(asgi_mw, method, request_fields(request_name, asgi_tag))
    if method == "HEAD":
        wsgi = wsgi_head_body(wsgi)
    assert asgi.status == wsgi.status
    assert asgi.field("content-range") == wsgi.field("content-range")
    if wsgi.status in (200, 206):  # a 304's fields and a 416's body are each framework's own
        assert asgi.field("accept-ranges") == wsgi.field("accept-ranges") == "bytes"
        assert asgi.field("content-length") == wsgi.field("content-length")
        assert asgi.body == wsgi.body
        check_bytes(wsgi, method, request_name)


def test_multi_range_is_each_frameworks_own_answer(data_path: Path) -> None:
    # Both frameworks answer a multi-range themselves (Starlette: 206 multipart; Werkzeug:
    # 416, it serves one range only); the middleware passes each answer on as it is.
    fields = {"Range": "bytes=0-9,500-599"}
    asgi = call_asgi(ASGIRangeMiddleware(starlette_app(data_path)), "GET", fields)
    assert asgi.status == 206
    assert parts(asgi) == [(f"bytes 0-9/{len(DATA)}", DATA[0:10]),
                           (f"bytes 500-599/{len(DATA)}", DATA[500:600])]
    wsgi = call_wsgi(WSGIRangeMiddleware(flask_app(data_path)), "GET", fields)
    bare = call_wsgi(flask_app(data_path), "GET", fields)
    assert (wsgi.status, wsgi.body) == (bare.status, bare.body)


# -- the wrong adapter, refused when made --

async def asgi_function(scope: Any, receive: Any, send: Any) -> None:
    """An ASGI app."""


class ASGIClass:
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """An ASGI app object."""


def wsgi_function(environ: Any, start_response: Any) -> Iterable[bytes]:
    return []


class WSGIClass:
    def __call__(self, environ: Any, start_response: Any) -> Iterable[bytes]:
        return []


@pytest.mark.parametrize("app", [
    asgi_function, ASGIClass(), functools.partial(asgi_function),
    functools.partial(functools.partial(ASGIClass())),
], ids=["function", "object", "partial", "partial of an object"])
def test_wsgi_adapter_refuses_an_asgi_app(app: Any) -> None:
    with pytest.raises(TypeError, match=re.escape("from rangewsgi.asgi import RangeMiddleware")):
        WSGIRangeMiddleware(app)


@pytest.mark.parametrize("app", [wsgi_function, WSGIClass(),
                                 functools.partial(wsgi_function)],
                         ids=["function", "object", "partial"])
def test_asgi_adapter_refuses_a_wsgi_app(app: Any) -> None:
    with pytest.raises(TypeError, match="from rangewsgi import RangeMiddleware"):
        ASGIRangeMiddleware(app)


def test_real_frameworks_are_refused_by_the_other_adapter(data_path: Path) -> None:
    from fastapi import FastAPI

    fastapi_app = FastAPI()
    with pytest.raises(TypeError, match=re.escape("rangewsgi.asgi")):
        WSGIRangeMiddleware(fastapi_app)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="from rangewsgi import"):
        ASGIRangeMiddleware(flask_app(data_path))
    with pytest.raises(TypeError, match=re.escape("rangewsgi.asgi")):
        WSGIRangeMiddleware(starlette_app(data_path))  # type: ignore[arg-type]
    # Each is accepted by its own adapter.
    WSGIRangeMiddleware(flask_app(data_path))
    ASGIRangeMiddleware(fastapi_app)
    ASGIRangeMiddleware(starlette_app(data_path))


@pytest.mark.parametrize("app", [
    print,  # a builtin: its signature cannot be read... or says *args
    lambda scope: None,  # ASGI 2 style: one argument
    lambda scope, receive, send: None,  # returns an awaitable, maybe
    lambda *args: None,
    type("Legacy", (), {"__init__": lambda self, scope: None}),  # ASGI 2 class
], ids=["builtin", "asgi2", "three args", "varargs", "asgi2 class"])
def test_what_cannot_be_proven_wrong_is_accepted(app: Any) -> None:
    ASGIRangeMiddleware(app)


def test_a_misspelt_option_names_the_close_match() -> None:
    with pytest.raises(TypeError, match="did you mean 'max_ranges'"):
        WSGIRangeMiddleware(wsgi_function, max_range=3)
    with pytest.raises(TypeError, match="did you mean 'max_ranges'"):
        ASGIRangeMiddleware(asgi_function, max_range=3)
    with pytest.raises(TypeError, match="WSGI-only"):
        ASGIRangeMiddleware(asgi_function, use_file_wrapper=False)
    assert WSGIRangeMiddleware(wsgi_function, max_ranges=3).options.max_ranges == 3
    assert ASGIRangeMiddleware(asgi_function, max_ranges=3).options.max_ranges == 3
