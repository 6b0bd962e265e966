"""The server table (rangewsgi/servers.py): each server recognised by what it tells about
itself, as recorded from the real servers in test_server_wrappers.py."""

from __future__ import annotations

import sys
import wsgiref.util
from typing import Any

import pytest
import werkzeug.wsgi
from gunicorn.http.wsgi import FileWrapper as GunicornFileWrapper

from rangewsgi.servers import BJOERN, GUNICORN, GUNICORN_OLD, MOD_WSGI, UNKNOWN, UWSGI, identify


class ModWsgiWrapper:
    """Stands for mod_wsgi's C type, whose module is ``mod_wsgi``."""


ModWsgiWrapper.__module__ = "mod_wsgi"


class BuiltinWrapper:
    """Stands for bjoern's C type ``builtins.FileWrapper``."""


BuiltinWrapper.__module__ = "builtins"
BuiltinWrapper.__name__ = "FileWrapper"


def uwsgi_sendfile() -> None:
    """uWSGI's wrapper is a built-in function whose ``__module__`` is None."""


uwsgi_sendfile.__module__ = None  # type: ignore[assignment]


@pytest.mark.parametrize(("environ", "wrapper", "row"), [
    ({"SERVER_SOFTWARE": "gunicorn/27.0.1"}, GunicornFileWrapper, GUNICORN),
    ({"SERVER_SOFTWARE": "gunicorn/21.2.0"}, GunicornFileWrapper, GUNICORN),
    ({"SERVER_SOFTWARE": "gunicorn/20.1.0"}, GunicornFileWrapper, GUNICORN_OLD),
    ({"SERVER_SOFTWARE": "gunicorn/19.9.0"}, GunicornFileWrapper, GUNICORN_OLD),
    ({}, GunicornFileWrapper, UNKNOWN),  # gunicorn's class, but who says which version?
    ({"SERVER_SOFTWARE": "waitress"}, GunicornFileWrapper, UNKNOWN),
    ({"uwsgi.version": b"2.0.31"}, uwsgi_sendfile, UWSGI),
    ({"mod_wsgi.version": (4, 9, 4),
      "SERVER_SOFTWARE": "Apache/2.4.71 (Debian) mod_wsgi/4.9.4 Python/3.11"},
     ModWsgiWrapper, MOD_WSGI),
    ({"mod_wsgi.version": (4, 9, 4), "mod_wsgi.process_group": "app"}, ModWsgiWrapper,
     MOD_WSGI),
    ({"mod_wsgi.version": (3, 4)}, ModWsgiWrapper, UNKNOWN),
    ({"SERVER_SOFTWARE": "WSGIServer/0.2"}, wsgiref.util.FileWrapper, UNKNOWN),
    ({"SERVER_SOFTWARE": "Werkzeug/3.1.8"}, werkzeug.wsgi.FileWrapper, UNKNOWN),
    ({"SERVER_SOFTWARE": "gunicorn/27.0.1"}, wsgiref.util.FileWrapper, UNKNOWN),
    ({}, None, UNKNOWN),
])
def test_identify(environ: dict[str, Any], wrapper: object, row: object) -> None:
    assert identify(environ, wrapper) is row


def test_bjoern_is_told_by_its_wrapper_and_its_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "_bjoern", raising=False)
    assert identify({}, BuiltinWrapper) is UNKNOWN  # another C server's wrapper: not proven
    monkeypatch.setitem(sys.modules, "_bjoern", sys)
    assert identify({}, BuiltinWrapper) is BJOERN


def test_rows() -> None:
    assert GUNICORN.zero_copy and MOD_WSGI.zero_copy
    assert not any(row.zero_copy for row in (GUNICORN_OLD, UWSGI, BJOERN, UNKNOWN))
    assert (GUNICORN_OLD.honours_offset, GUNICORN_OLD.stops_at_length) == (False, True)
    assert (BJOERN.honours_offset, BJOERN.stops_at_length) == (True, False)
    assert (UWSGI.honours_offset, UWSGI.stops_at_length) == (False, False)
