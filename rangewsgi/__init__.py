"""rangewsgi: RFC 9110 byte ranges (206, multipart/byteranges, 416) and conditional requests
(304, 412) for any WSGI or ASGI app."""

from .files import FileWrapper
from .middleware import Predicate, RangeMiddleware

__all__ = ["FileWrapper", "Predicate", "RangeMiddleware", "__version__"]
__version__ = "0.1.0"
"""The release of this package (PEP 440); pyproject.toml and docs/conf.py read it from here."""
