"""Shared helpers for tests that talk to real servers on loopback.

Servers are started on free ports, waited for with a bounded loop, and stopped by PID
(their whole process group). Responses are read with a small raw HTTP/1.1 client so that
keep-alive framing errors (a body longer or shorter than its Content-Length) are caught.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, proc: subprocess.Popen[bytes] | None = None,
                  timeout: float = 30.0) -> None:
    """Poll until something accepts connections on ``port`` (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise RuntimeError(f"server exited with {proc.returncode}:\n{out[-4000:]}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {HOST}:{port} after {timeout}s")


@dataclass
class Server:
    """A server process started by a test, stopped by PID."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        stop_process(self.proc, sig, timeout)


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM,
                 timeout: float = 10.0) -> None:
    """Signal the process group of ``proc``; SIGKILL it if it has not gone in ``timeout``."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout)
    if proc.stdout is not None:
        proc.stdout.close()


def start_server(cmd: Sequence[str], port: int, *, env: Mapping[str, str] | None = None,
                 cwd: str | Path | None = None, log_path: Path | None = None,
                 timeout: float = 30.0) -> Server:
    """Start ``cmd`` in its own process group and wait until ``port`` accepts connections."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), str(ROOT / "tests"), full_env.get("PYTHONPATH", "")) if p)
    if env:
        full_env.update(env)
    out = open(log_path, "wb") if log_path is not None else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(list(cmd), env=full_env, cwd=cwd, stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)
    if log_path is not None:
        out.close()  # type: ignore[union-attr]
    try:
        wait_for_port(port, proc, timeout)
    except BaseException:
        stop_process(proc)
        if log_path is not None and log_path.exists():
            raise RuntimeError(log_path.read_text(errors="replace")[-4000:]) from None
        raise
    return Server(proc, port, log_path)


def header_value(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    """The value of the first header called ``name`` (any case), or None."""
    lname = name.lower()
    for key, value in headers:
        if key.lower() == lname:
            return value
    return None


@dataclass
class RawResponse:
    """One HTTP/1.1 response read off a socket."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The value of the only (or first) header called ``name``, or None."""
        return header_value(self.headers, name)

    def header_all(self, name: str) -> list[str]:
        lname = name.lower()
        return [value for key, value in self.headers if key.lower() == lname]


class RawClient:
    """A minimal keep-alive HTTP/1.1 client: requests on one connection, strict framing."""

    def __init__(self, port: int, host: str = HOST, timeout: float = 30.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.host = host
        self.port = port

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fill(self) -> bool:
        data = self.sock.recv(1 << 16)
        self.buf += data
        return bool(data)

    def _read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise ConnectionError(f"connection closed with {len(self.buf)} of {n} bytes")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def _read_line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise ConnectionError("connection closed inside a header line")
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def request(self, path: str = "/", headers: Mapping[str, str] | None = None,
                method: str = "GET") -> RawResponse:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        return self.read_response(method)

    def read_response(self, method: str = "GET") -> RawResponse:
        status_line = self._read_line().decode("latin-1")
        _version, code, *reason = status_line.split(" ", 2)
        headers: list[tuple[str, str]] = []
        while True:
            line = self._read_line()
            if not line:
                break
            key, _, value = line.decode("latin-1").partition(":")
            headers.append((key.strip(), value.strip()))
        resp = RawResponse(int(code), reason[0] if reason else "", headers, b"")
        status = int(code)
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return resp
        te = resp.header("Transfer-Encoding")
        cl = resp.header("Content-Length")
        if te is not None and "chunked" in te.lower():
            resp.body = self._read_chunked()
        elif cl is not None:
            resp.body = self._read_exact(int(cl))
        else:
            while self._fill():
                pass
            resp.body, self.buf = self.buf, b""
        return resp

    def _read_chunked(self) -> bytes:
        parts = []
        while True:
            size = int(self._read_line().split(b";")[0], 16)
            if size == 0:
                while self._read_line():
                    pass
                return b"".join(parts)
            parts.append(self._read_exact(size))
            self._read_line()

    def assert_idle(self, wait: float = 0.2) -> None:
        """Fail if the server sent anything beyond the responses already read (overrun)."""
        self.sock.settimeout(wait)
        try:
            extra = self.sock.recv(1 << 16)
        except TimeoutError:
            extra = b""
        finally:
            self.sock.settimeout(30.0)
        assert self.buf + extra == b"", f"bytes after the response: {(self.buf + extra)[:80]!r}"


def parse_multipart(body: bytes, content_type: str) -> list[tuple[dict[str, str], bytes]]:
    """Split a multipart/byteranges body into (part headers, part bytes), strictly (CRLF)."""
    params = dict(p.strip().split("=", 1) for p in content_type.split(";")[1:])
    boundary = params["boundary"].encode("latin-1")
    assert not boundary.startswith(b'"'), "boundary must be an unquoted token"
    delim = b"--" + boundary
    assert body.startswith(delim + b"\r\n") or body.startswith(b"\r\n" + delim + b"\r\n")
    assert body.endswith(b"\r\n" + delim + b"--\r\n")
    inner = body[: -len(b"\r\n" + delim + b"--\r\n")]
    if inner.startswith(b"\r\n"):
        inner = inner[2:]
    chunks = inner[len(delim) + 2:].split(b"\r\n" + delim + b"\r\n")
    parts = []
    for chunk in chunks:
        head, _, data = chunk.partition(b"\r\n\r\n")
        fields = {}
        for line in head.split(b"\r\n"):
            key, _, value = line.decode("latin-1").partition(":")
            fields[key.strip().lower()] = value.strip()
        parts.append((fields, data))
    return parts
