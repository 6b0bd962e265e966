"""rangewsgi: RFC 9110 byte ranges (206, multipart/byteranges, 416) and conditional requests
(304, 412) for any WSGI or ASGI app."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .files import FileWrapper
    from .middleware import Predicate, RangeMiddleware

__all__ = ["FileWrapper", "Predicate", "RangeMiddleware", "__version__"]
__version__ = "0.1.0"
"""The release of this package (PEP 440); pyproject.toml and docs/conf.py read it from here."""

# Loaded on first use (PEP 562): ``import rangewsgi.asgi`` runs this module, and must not
# load the WSGI adapter.
_LAZY = {"FileWrapper": "files", "Predicate": "middleware", "RangeMiddleware": "middleware"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value  # the next lookup does not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
