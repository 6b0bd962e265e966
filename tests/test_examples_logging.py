"""The S3 examples say why they answer ``502``: run as a new user would, without credentials.

boto3 signs every request, so with no credentials anywhere (no ``AWS_*`` variables, no
``~/.aws`` files, no instance metadata) ``S3Source`` fails before a byte leaves the machine,
whatever the endpoint: the example answers ``502`` and its log names the error and its
cause (botocore's ``NoCredentialsError``), on one line. The endpoint is a closed local port,
so a request that did go out would fail differently (``ConnectionError``).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path

import pytest
from server_configs.launch import in_ci
from support import ROOT, RawClient, RawResponse, Server, free_port, start_server

pytestmark = pytest.mark.network

EXAMPLES = {
    # example: (package it needs besides boto3, the 502 body it sends)
    "s3_flask": ("flask", b"Bad Gateway"),
    "s3_django": ("django", b"bad gateway\n"),
}
KEY = "clips/movie.mp4"
LOGGED = "WARNING:__main__:502 for key 'clips/movie.mp4': S3 failed: UpstreamError: "
CAUSE = "Unable to locate credentials (from NoCredentialsError)"
LOG_WAIT = 5.0  # bound on the wait for the log line after the answer


def require(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        reason = f"{module} not installed (pip install -r tests/requirements-sources.txt)"
        if in_ci():
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An environment where boto3 finds no credentials: the servers started inherit it."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"  # no ~/.aws/credentials, no ~/.aws/config
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    # Where the machine is an EC2 instance its metadata service would hand out credentials.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return tmp_path


def start_example(example: str, workdir: Path) -> Server:
    port = free_port()
    closed = free_port()  # nothing listens there
    cmd = [sys.executable, str(ROOT / "examples" / f"{example}.py"), "--bucket", "media",
           "--endpoint-url", f"http://127.0.0.1:{closed}", "--port", str(port)]
    return start_server(cmd, port, cwd=workdir, log_path=workdir / f"{example}.log")


def logged_lines(server: Server, prefix: str, count: int) -> list[str]:
    """The log lines starting with ``prefix``, once ``count`` are there (bounded wait)."""
    deadline = time.monotonic() + LOG_WAIT
    while True:
        lines = [line for line in server.log().splitlines() if line.startswith(prefix)]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_502_without_credentials_is_logged(example: str, no_credentials: Path) -> None:
    needs, body = EXAMPLES[example]
    require("boto3")
    require(needs)
    server = start_example(example, no_credentials)
    try:
        answers: list[RawResponse] = []
        for value in ("bytes=0-99", "bytes=-100"):
            with RawClient(server.port) as client:  # werkzeug's server: HTTP/1.0, one each
                answers.append(client.request(f"/files/{KEY}", {"Range": value}))
        for answer in answers:
            assert answer.status == 502, (answer.status, answer.headers, server.log()[-3000:])
            assert body in answer.body and answer.header("Content-Range") is None
        lines = logged_lines(server, "WARNING:", len(answers))
        # One line per failed request, naming the key, the error and botocore's cause.
        assert len(lines) == len(answers), server.log()[-3000:]
        for line in lines:
            assert line.startswith(LOGGED) and line.endswith(CAUSE), line
            assert f"s3://media/{KEY}" in line, line
    finally:
        server.stop()
