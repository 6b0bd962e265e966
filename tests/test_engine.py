"""The sans-IO engine as tables: request fields -> route; method x request fields x response
x body x server -> action; and the lean pass-through agreeing with the full path."""

from __future__ import annotations

import io
import itertools
from pathlib import Path
from typing import Any

import pytest

from rangewsgi.bodies import RangeSlicer, exactly, read_file_ranges, read_source_ranges
from rangewsgi.decision import needs_body
from rangewsgi.engine import (
    HEAD_HIDES,
    NO_ZERO_COPY,
    STREAM,
    Action,
    Body,
    BodyKind,
    Plain,
    Response,
    Route,
    Server,
    Step,
    plain_answer,
    plain_step,
    read_request,
    respond,
    step_for,
)
from rangewsgi.files import FoundFile
from rangewsgi.options import Options
from rangewsgi.plan import Headers, Kind, decide, read_headers
from rangewsgi.servers import (
    BJOERN,
    GUNICORN,
    GUNICORN_OLD,
    PATHSEND,
    UNKNOWN,
    UWSGI,
    ServerRow,
    sends_window,
)

DATA = bytes(range(256)) * 64  # 16384 bytes
ETAG = '"v1"'
LM = "Sat, 21 Nov 2026 10:00:00 GMT"
FIELDS: Headers = [("Content-Type", "application/octet-stream"),
                   ("Content-Length", str(len(DATA))), ("ETag", ETAG), ("Last-Modified", LM)]
OPTIONS = Options()


# -- the request --

@pytest.mark.parametrize(("method", "fields", "route", "hide", "range_seen"), [
    ("POST", {"range": "bytes=0-1"}, Route.UNTOUCHED, set(), None),
    ("PUT", {}, Route.UNTOUCHED, set(), None),
    ("GET", {}, Route.PLAIN, set(), None),
    ("HEAD", {}, Route.PLAIN, set(), None),
    ("GET", {"range": "bytes=0-1"}, Route.DECIDE, set(), "bytes=0-1"),
    ("GET", {"if-range": ETAG}, Route.DECIDE, set(), None),
    ("GET", {"if-none-match": ETAG}, Route.DECIDE, set(), None),
    # RFC 9110 14.2: a HEAD's Range and If-Range are ignored, and hidden from the app.
    ("HEAD", {"range": "bytes=0-1"}, Route.PLAIN, {"range"}, None),
    ("HEAD", {"range": "bytes=0-1", "if-range": ETAG}, Route.PLAIN, {"range", "if-range"},
     None),
    ("HEAD", {"if-range": ETAG}, Route.PLAIN, {"if-range"}, None),
    ("HEAD", {"range": "bytes=0-1", "if-match": ETAG}, Route.DECIDE, {"range"}, None),
])
def test_request_route(method: str, fields: dict[str, str], route: Route, hide: set[str],
                       range_seen: str | None) -> None:
    view = read_request(method, fields)
    assert view.route is route
    # Only fields the request has are named; the view hides both from a HEAD.
    assert view.hide == (HEAD_HIDES if hide else frozenset())
    if route is Route.UNTOUCHED:
        assert view.request is None
    else:
        assert view.request is not None and view.request.range == range_seen
        assert view.request.method == method


# -- the response: method x request x body x server -> action --

def found_file(tmp_path: Path, base: int = 0) -> tuple[FoundFile, Any]:
    path = tmp_path / "data.bin"
    path.write_bytes(b"P" * base + DATA)
    file = open(path, "rb")  # noqa: SIM115 - closed by the caller
    file.seek(base)
    return FoundFile(file, base, file.close, 4096), file


class Source:
    """A ranged source over DATA."""

    size = len(DATA)

    def read_range(self, start: int, stop: int) -> list[bytes]:
        return [DATA[start:stop]]

    def __iter__(self) -> Any:
        return iter([DATA])

    def close(self) -> None:
        pass


def carry_out(step: Step, found: FoundFile | None, source: Source | None) -> bytes:
    """The bytes a step sends, read the way every adapter reads them (no protocol)."""
    if step.action is Action.FIXED:
        return step.fixed
    if step.action is Action.FORWARD:
        return DATA
    if step.action is Action.SERVER_WINDOW:
        assert found is not None
        found.file.seek(step.start)
        return bytes(found.file.read(step.stop - step.start))
    if step.action is Action.FILE_RANGES:
        assert found is not None
        return b"".join(read_file_ranges(found.file, step.base, step.ranges, step.framing,
                                         found.blksize))
    if step.action is Action.SOURCE_RANGES:
        assert source is not None
        if step.whole:
            return b"".join(exactly(source, step.plan.length))
        return b"".join(read_source_ranges(source, step.ranges, step.framing))
    slicer = RangeSlicer(step.ranges, step.framing)
    out = b"".join(piece for chunk in (DATA[i:i + 1000] for i in range(0, len(DATA), 1000))
                   for piece in slicer.push(chunk))
    slicer.finish()
    return out


REQUESTS = {  # name: (method, request fields)
    "GET": ("GET", {}),
    "GET single": ("GET", {"range": "bytes=100-199"}),
    "GET whole range": ("GET", {"range": "bytes=0-"}),
    "GET suffix": ("GET", {"range": "bytes=-100"}),
    "GET multi": ("GET", {"range": "bytes=0-9,200-299"}),
    "GET unsatisfiable": ("GET", {"range": "bytes=99999-"}),
    "GET If-None-Match": ("GET", {"if-none-match": ETAG}),
    "GET If-Match fails": ("GET", {"if-match": '"other"'}),
    "GET If-Range mismatch": ("GET", {"range": "bytes=0-9", "if-range": '"other"'}),
    "HEAD": ("HEAD", {}),
    "HEAD single": ("HEAD", {"range": "bytes=0-9"}),
    "HEAD If-None-Match": ("HEAD", {"if-none-match": ETAG}),
}

# (request, body kind, server) -> action; the server only matters for a file window.
EXPECTED: dict[tuple[str, str], Action] = {
    ("GET", "stream"): Action.FORWARD,
    ("GET", "file"): Action.SERVER_WINDOW,  # the whole file, to a proven server
    ("GET", "source"): Action.SOURCE_RANGES,
    ("GET single", "stream"): Action.STREAM_SLICE,
    ("GET single", "file"): Action.FILE_RANGES,  # 100 bytes: below the min size
    ("GET single", "source"): Action.SOURCE_RANGES,
    ("GET whole range", "stream"): Action.STREAM_SLICE,
    ("GET whole range", "file"): Action.SERVER_WINDOW,
    ("GET whole range", "source"): Action.SOURCE_RANGES,
    ("GET suffix", "stream"): Action.STREAM_SLICE,
    ("GET suffix", "file"): Action.FILE_RANGES,
    ("GET suffix", "source"): Action.SOURCE_RANGES,
    ("GET multi", "stream"): Action.STREAM_SLICE,
    ("GET multi", "file"): Action.FILE_RANGES,
    ("GET multi", "source"): Action.SOURCE_RANGES,
    ("GET If-Range mismatch", "stream"): Action.FORWARD,
    ("GET If-Range mismatch", "file"): Action.SERVER_WINDOW,
    ("GET If-Range mismatch", "source"): Action.SOURCE_RANGES,
}
FIXED_REQUESTS = {"GET unsatisfiable": b"416 Range Not Satisfiable\n",
                  "GET If-None-Match": b"", "GET If-Match fails": b"412 Precondition Failed\n",
                  "HEAD": b"", "HEAD single": b"", "HEAD If-None-Match": b""}


def expected_bytes(name: str) -> bytes:
    _, fields = REQUESTS[name]
    return {"bytes=100-199": DATA[100:200], "bytes=0-": DATA, "bytes=-100": DATA[-100:],
            "bytes=0-9": DATA}.get(fields.get("range", ""), DATA)


@pytest.mark.parametrize(("name", "body"),
                         list(itertools.product(REQUESTS, ("stream", "file", "source"))))
def test_action_table(tmp_path: Path, name: str, body: str) -> None:
    method, fields = REQUESTS[name]
    view = read_request(method, fields)
    assert view.request is not None
    headers = FIELDS if body != "file" else [FIELDS[0], FIELDS[2], FIELDS[3]]
    response = Response("200 OK", headers, read_headers("200 OK", headers))
    found, file = found_file(tmp_path) if body == "file" else (None, None)
    source = Source() if body == "source" else None
    try:
        step, used_file, used_source = respond(view.request, response, OPTIONS, {}, found,
                                               source, Server(GUNICORN, 1000))
        if name in FIXED_REQUESTS:
            assert step.action is Action.FIXED
            assert step.fixed == FIXED_REQUESTS[name]
            return
        assert step.action is EXPECTED[name, body]
        sent = carry_out(step, used_file, used_source)  # type: ignore[arg-type]
        if step.plan.kind is Kind.MULTIPART:
            assert step.framing is not None
            assert DATA[0:10] in sent and DATA[200:300] in sent
            assert len(sent) == step.framing.content_length
        else:
            assert sent == expected_bytes(name)
    finally:
        if file is not None:
            file.close()


def test_a_window_inside_the_file_respects_its_base(tmp_path: Path) -> None:
    found, file = found_file(tmp_path, base=7)
    with file:
        view = read_request("GET", {"range": "bytes=5000-9999"})
        assert view.request is not None
        response = Response("200 OK", FIELDS[:2], read_headers("200 OK", FIELDS[:2]))
        step = respond(view.request, response, OPTIONS, {}, found, None,
                       Server(GUNICORN, 0))[0]
        assert step.action is Action.SERVER_WINDOW and (step.start, step.stop) == (5007, 10007)
        assert carry_out(step, found, None) == DATA[5000:10000]


@pytest.mark.parametrize(("row", "start", "stop", "eof", "sent"), [
    (GUNICORN, 10, 20, 100, True),
    (GUNICORN_OLD, 10, 20, 100, False),  # sends from byte 0
    (GUNICORN_OLD, 0, 20, 100, True),
    (BJOERN, 10, 20, 100, False),  # sends on to the end of the file
    (BJOERN, 10, 100, 100, True),
    (UWSGI, 0, 100, 100, True),  # the whole file only
    (UWSGI, 0, 99, 100, False),
    (PATHSEND, 0, 100, 100, True),
    (PATHSEND, 1, 100, 100, False),
    (PATHSEND, 0, 100, None, False),  # an end not measured proves nothing
    (UNKNOWN, 0, 20, 100, False),
])
def test_server_window_rule(row: ServerRow, start: int, stop: int, eof: int | None,
                            sent: bool) -> None:
    assert sends_window(row, start, stop, eof) is sent


@pytest.mark.parametrize(("server", "body", "action"), [
    (NO_ZERO_COPY, Body(BodyKind.FILE, 0, len(DATA), True), Action.FILE_RANGES),
    (Server(GUNICORN, 0), Body(BodyKind.FILE, 0, len(DATA), False), Action.FILE_RANGES),
    (Server(GUNICORN, len(DATA) + 1), Body(BodyKind.FILE, 0, len(DATA), True),
     Action.FILE_RANGES),
    (Server(GUNICORN, 0), Body(BodyKind.FILE, 0, len(DATA), True), Action.SERVER_WINDOW),
])
def test_server_window_needs_a_plain_file_and_the_size(server: Server, body: Body,
                                                       action: Action) -> None:
    view = read_request("GET", {})
    assert view.request is not None
    facts = read_headers("200 OK", FIELDS)
    assert facts is not None
    plan = decide(view.request, "200 OK", FIELDS, facts, len(DATA), OPTIONS.limits)
    assert step_for(plan, False, body, server).action is action


def test_stream_slice_sends_multipart_parts_ascending() -> None:
    view = read_request("GET", {"range": "bytes=200-299,0-9"})
    assert view.request is not None
    step = respond(view.request, Response("200 OK", FIELDS, read_headers("200 OK", FIELDS)),
                   OPTIONS, {})[0]
    assert step.action is Action.STREAM_SLICE
    assert [r.start for r in step.ranges] == [0, 200]
    sent = carry_out(step, None, None)
    assert sent.index(DATA[0:10]) < sent.index(DATA[200:300])


def test_a_pass_is_forwarded_for_every_body(tmp_path: Path) -> None:
    view = read_request("GET", {"range": "bytes=0-9"})
    assert view.request is not None
    for status in ("404 Not Found", "206 Partial Content"):
        response = Response(status, FIELDS, read_headers(status, FIELDS))
        assert respond(view.request, response, OPTIONS, {})[0].action is Action.FORWARD
    assert step_for(respond(view.request, Response("404 Not Found", FIELDS, None), OPTIONS,
                            {})[0].plan, True, STREAM).action is Action.FORWARD


# -- the lean pass-through agrees with the full path --

PLAIN_CASES: list[tuple[str, Headers]] = [
    ("200 OK", FIELDS),
    ("200 OK", FIELDS[:2]),  # no validators
    ("200 OK", [FIELDS[0], FIELDS[2]]),  # no length
    ("200 OK", [*FIELDS, ("Content-Length", "5")]),  # two lengths
    ("200 OK", [("content-length", " 12 "), ("etag", ETAG)]),
    ("200 OK", [("Content-Length", "1x"), ("ETag", ETAG)]),
    ("200 OK", [("Content-Length", "")]),
    ("200 OK", [*FIELDS, ("Transfer-Encoding", "chunked")]),
    ("200 OK", [*FIELDS, ("Content-Range", "bytes 0-1/2")]),
    ("200 OK", [*FIELDS, ("Content-Encoding", "gzip")]),
    ("200 OK", [*FIELDS, ("Content-Encoding", "identity")]),
    ("200 OK", [*FIELDS, ("Accept-Ranges", "bytes")]),
    ("200 OK", [*FIELDS, ("Accept-Ranges", "none")]),
    ("200 OK", [("CONTENT-LENGTH", "3"), ("LAST-MODIFIED", LM)]),
    ("200", FIELDS),
    ("2000 OK", FIELDS),
    ("404 Not Found", FIELDS),
    ("304 Not Modified", []),
    ("200 OK", []),
]


@pytest.mark.parametrize(("status", "headers"), PLAIN_CASES)
@pytest.mark.parametrize("validators", [True, False])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_plain_answer_agrees_with_the_full_path(status: str, headers: Headers,
                                                validators: bool, method: str) -> None:
    view = read_request(method, {})
    assert view.request is not None
    options = Options(file_validators=validators)
    for fields in (headers, [(n.lower().encode(), v.encode()) for n, v in headers]):
        answer = plain_answer(status, fields, validators)
        if answer is Plain.FULL_PATH:
            continue  # the full path decides: nothing to agree on
        facts = read_headers(status, headers)
        if answer is Plain.BODY:
            assert needs_body(view.request, status, headers, options, facts)
            continue
        # The full path needs no body here (validators=True: a file would have none to add).
        assert not needs_body(view.request, status, headers, options, facts)
        step = respond(view.request, Response(status, headers, facts), options, {})[0]
        lean = plain_step(method == "HEAD", answer)
        assert lean.action is step.action
        assert (lean.plan.kind, lean.plan.reason) == (step.plan.kind, step.plan.reason)
        if answer is Plain.UNTOUCHED:
            assert step.plan.kind is Kind.PASS and step.plan.headers == headers
        else:
            assert step.plan.kind is Kind.FULL
            assert step.plan.headers == [*headers, ("Accept-Ranges", "bytes")]


def test_plain_answer_reads_bytearray_names_on_the_full_path() -> None:
    fields = [(bytearray(b"content-length"), bytearray(b"3"))]
    assert plain_answer("200 OK", fields, False) is Plain.FULL_PATH


def test_plain_answers_that_matter_are_lean() -> None:
    # The common shapes never take the full path.
    assert plain_answer("200 OK", FIELDS, True) is Plain.ACCEPT_RANGES
    assert plain_answer("404 Not Found", [], True) is Plain.UNTOUCHED
    assert plain_answer("200 OK", FIELDS[:2], False) is Plain.ACCEPT_RANGES
    assert plain_answer("200 OK", FIELDS[:2], True) is Plain.BODY  # a file may get some


def test_bodies_are_bytes_not_text() -> None:
    # A FIXED step's body is bytes ready to send, never a list to join.
    view = read_request("GET", {"range": "bytes=99999-"})
    assert view.request is not None
    step = respond(view.request, Response("200 OK", FIELDS, read_headers("200 OK", FIELDS)),
                   OPTIONS, {})[0]
    assert isinstance(step.fixed, bytes) and step.plan.status.startswith("416")
    assert ("Content-Length", str(len(step.fixed))) in step.plan.headers
    assert io.BytesIO(step.fixed).read() == b"416 Range Not Satisfiable\n"
