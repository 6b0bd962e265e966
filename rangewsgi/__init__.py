"""rangewsgi: RFC 9110 byte ranges (206, multipart/byteranges, 416) for any WSGI app."""

from .files import FileWrapper
from .middleware import Predicate, RangeMiddleware

__all__ = ["FileWrapper", "Predicate", "RangeMiddleware", "__version__"]
__version__ = "0.1.0"
