"""``python -m rangewsgi``: serve a directory or any WSGI or ASGI app with byte ranges.

The directory apps are deliberately range-unaware (a plain ``200`` with ``Content-Length``,
``ETag`` and ``Last-Modified``), so every ``206`` seen comes from the middleware. The WSGI side
(werkzeug's server) is ``demo_wsgi``, the ASGI side (uvicorn) ``asgi_demo``, what both share
``demo_common``; this command line loads only the side it serves.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import wave
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from .demo_common import bind_socket, describe, is_asgi_app, require_uvicorn, signals_exit
from .options import OPTION_SPECS, Options

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

__all__ = ["main", "write_sample", "write_sample_video"]  # and, from demo_wsgi, the two below


def __getattr__(name: str) -> Any:
    """``make_directory_app`` and ``serve`` of the WSGI side, loaded when first asked for."""
    if name in ("make_directory_app", "serve"):
        from . import demo_wsgi

        return getattr(demo_wsgi, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def write_sample(directory: Path, minutes: int = 10) -> Path:
    """Write a WAV tone sweep long enough that seeking sends mid-file Range requests."""
    rate = 8000
    path = directory / "sweep.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        second = bytearray()
        for minute in range(minutes):
            pitch = 220 * 2 ** (minute / 4)
            second.clear()
            for i in range(rate):
                value = int(9000 * math.sin(2 * math.pi * pitch * i / rate))
                second += value.to_bytes(2, "little", signed=True)
            out.writeframes(bytes(second) * 60)
    return path


def write_sample_video(directory: Path, seconds: int = 30) -> Path | None:
    """Write a WebM test card with a tone (VP9 and Opus) made by ffmpeg from its own
    generators, no input and no network; None, with a note on stderr, without ffmpeg."""
    ffmpeg = shutil.which("ffmpeg")
    path = directory / "testcard.webm"
    if ffmpeg is None:
        print("rangewsgi demo: ffmpeg not found, so --sample serves audio only "
              "(apt-get install ffmpeg for the video)", file=sys.stderr, flush=True)
        return None
    cmd = [ffmpeg, "-v", "error", "-y",
           "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=24:duration={seconds}",
           "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
           "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "500k",
           "-c:a", "libopus", "-b:a", "48k", "-shortest", str(path)]
    done = subprocess.run(cmd, capture_output=True, check=False, timeout=300)
    if done.returncode != 0:
        print(f"rangewsgi demo: ffmpeg could not make the sample video "
              f"({done.stderr.decode(errors='replace').strip()[:200]}); serving audio only",
              file=sys.stderr, flush=True)
        path.unlink(missing_ok=True)
        return None
    return path


def _import_app(spec: str) -> WSGIApplication:
    module_name, _, attr = spec.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in (attr or "application").split("."):
        obj = getattr(obj, part)
    return cast("WSGIApplication", obj)


def _load_app(spec: str, debug: bool) -> WSGIApplication:
    """The app ``spec`` names; when it cannot be imported, one line naming the error and exit
    status 1 (``debug``: the whole traceback)."""
    try:
        return _import_app(spec)
    except Exception as error:
        if debug:
            raise
        reason = " ".join(describe(error).split())  # one line, whatever the message holds
        print(f"rangewsgi demo: cannot import app {spec!r}: {reason} (--debug shows the "
              "traceback)", file=sys.stderr, flush=True)
        raise SystemExit(1) from None


def _max_ranges(text: str) -> int:
    """An argparse type: ``--max-ranges``, held to the middleware's own rule."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    try:
        Options(max_ranges=value)
    except ValueError as error:  # "max_ranges must be at least 1, not 0"
        raise argparse.ArgumentTypeError(str(error).removeprefix("max_ranges ")) from None
    return value


def _prog() -> str | None:
    """``python -m rangewsgi`` when run so; else None: argparse names the script run."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name == f"{__package__}.__main__":
        return f"python -m {__package__}"
    return None


def _serve_wsgi(args: argparse.Namespace, inner: object | None, sock: socket.socket) -> None:
    """Serve ``module:app`` (``inner``), else the target directory, with werkzeug."""
    from . import demo_wsgi
    from .middleware import RangeMiddleware

    app = (demo_wsgi.make_directory_app(args.target) if inner is None
           else cast("WSGIApplication", inner))
    if not args.no_ranges:
        app = RangeMiddleware(app, max_ranges=args.max_ranges)
    # The request log replaces werkzeug's own access log (it also shows Range).
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    demo_wsgi.serve(app, args.host, args.port, log=None if args.quiet else sys.stderr, sock=sock)


def _serve_asgi(args: argparse.Namespace, inner: object | None, sock: socket.socket) -> None:
    """Serve ``module:app`` (``inner``), else the target directory, as ASGI with uvicorn."""
    from . import asgi, asgi_demo

    app = (asgi_demo.make_asgi_directory_app(args.target) if inner is None
           else cast("asgi.ASGIApp", inner))
    if not args.no_ranges:
        app = asgi.RangeMiddleware(app, max_ranges=args.max_ranges)
    asgi_demo.serve_asgi(app, args.host, args.port, log=None if args.quiet else sys.stderr,
                         sock=sock)


def main(argv: Sequence[str] | None = None) -> None:
    """The command line: serve a directory, a module:app or ``--sample`` until interrupted."""
    parser = argparse.ArgumentParser(
        prog=_prog(),
        description="Serve a directory (through a range-unaware file app) or any WSGI or ASGI "
                    "app (module:attribute) wrapped in RangeMiddleware.")
    parser.add_argument("target", nargs="?", default=".",
                        help="a directory to serve, or module:app to wrap (default: .)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 = any)")
    spec = OPTION_SPECS["max_ranges"]
    parser.add_argument("--max-ranges", type=_max_ranges, default=spec.default,
                        help=f"range-specs above this are ignored (default {spec.default}; "
                             f"at least {spec.least})")
    parser.add_argument("--no-ranges", action="store_true",
                        help="serve without the middleware, to see what clients do without it")
    parser.add_argument("--quiet", action="store_true", help="do not log requests")
    parser.add_argument("--asgi", action="store_true",
                        help="serve with uvicorn and the ASGI middleware: a directory through a "
                             "range-unaware ASGI file app, or module:app as an ASGI app (found "
                             "without this flag when it is a coroutine function or an object "
                             "whose __call__ is one); needs uvicorn")
    parser.add_argument("--sample", action="store_true",
                        help="serve a generated 10-minute WAV tone sweep and, with ffmpeg, a "
                             "30-second WebM test card (no target needed); deleted on exit")
    parser.add_argument("--debug", action="store_true",
                        help="show the whole traceback when module:app cannot be imported")
    args = parser.parse_args(argv)
    if args.asgi:
        require_uvicorn()  # before any sample is made
    with signals_exit(), contextlib.ExitStack() as cleanup, \
            contextlib.suppress(KeyboardInterrupt):
        # The port first: a busy one is reported before any sample is made.
        sock = cleanup.enter_context(bind_socket(args.host, args.port))
        if args.sample:
            args.target = cleanup.enter_context(tempfile.TemporaryDirectory(
                prefix="rangewsgi-sample-", ignore_cleanup_errors=True))
            write_sample(Path(args.target))
            write_sample_video(Path(args.target))
        inner = None
        if ":" in args.target and not Path(args.target).is_dir():
            sys.path.insert(0, os.getcwd())
            inner = _load_app(args.target, args.debug)
            args.asgi = args.asgi or is_asgi_app(inner)
        elif not Path(args.target).is_dir():
            parser.error(f"{args.target!r} is neither a directory nor module:app")
        (_serve_asgi if args.asgi else _serve_wsgi)(args, inner, sock)
