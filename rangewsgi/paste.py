"""PasteDeploy filter: ``[filter:range]`` with ``use = egg:rangewsgi`` in an ini file.

Ini values arrive as strings; ``filter_app_factory`` turns them into the typed options of
``RangeMiddleware``::

    [filter:range]
    use = egg:rangewsgi
    max_ranges = 20
    max_multipart_excess = 4096
    use_file_wrapper = true
    file_wrapper_min_size = 32768
    block_size = 65536
    conditional = true
    file_validators = true
    predicate = myproject.ranging:only_media

    [pipeline:main]
    pipeline = range myapp

Integers are plain ASCII decimals, booleans are ``true`` or ``false`` (any case), and
``predicate`` names a callable as ``module:attribute`` (dots allowed on both sides). Anything
else, including an option name the middleware does not know, raises ``ConfigError``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, cast

from .middleware import Predicate, RangeMiddleware

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

__all__ = ["ConfigError", "filter_app_factory", "parse_bool", "parse_int", "resolve_callable"]

_DECIMAL = re.compile(r"[0-9]+")
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_BLANK = " \t\r\n"


class ConfigError(ValueError):
    """An option in the ``[filter:...]`` section is unknown or has a value of the wrong type."""


def parse_int(name: str, value: object) -> int:
    """An ini integer: ASCII digits only (no sign, underscore, exponent or other digit forms)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip(_BLANK)
        # int() would also take "+5", "1_000" and non-ASCII digits; a typo should not load.
        if _DECIMAL.fullmatch(text):
            return int(text)
    raise ConfigError(f"rangewsgi: {name} must be a whole number, got {value!r}")


def parse_bool(name: str, value: object) -> bool:
    """An ini boolean: exactly ``true`` or ``false`` (any case), nothing looser."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip(_BLANK).lower()
        if text == "true":
            return True
        if text == "false":
            return False
    raise ConfigError(f"rangewsgi: {name} must be true or false, got {value!r}")


def resolve_callable(name: str, value: object) -> Callable[..., object]:
    """The callable named ``module:attribute`` (``attribute`` may be dotted)."""
    if callable(value):
        return cast("Callable[..., object]", value)
    if not isinstance(value, str):
        raise ConfigError(f"rangewsgi: {name} must name a callable, got {value!r}")
    module_name, sep, attribute = value.strip(_BLANK).partition(":")
    if not sep or not _DOTTED.fullmatch(module_name) or not _DOTTED.fullmatch(attribute):
        raise ConfigError(
            f"rangewsgi: {name} must look like 'package.module:callable', got {value!r}")
    try:
        target: object = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"rangewsgi: {name}: cannot import {module_name!r}: {exc}") from exc
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigError(
                f"rangewsgi: {name}: {module_name!r} has no attribute {attribute!r}") from None
    if not callable(target):
        raise ConfigError(f"rangewsgi: {name}: {value!r} is not callable")
    return cast("Callable[..., object]", target)


def _predicate(name: str, value: object) -> Predicate | None:
    if isinstance(value, str) and not value.strip(_BLANK):
        return None  # "predicate =" with nothing after it: no predicate
    return cast("Predicate", resolve_callable(name, value))


_OPTIONS = ("block_size", "conditional", "file_validators", "file_wrapper_min_size",
            "max_multipart_excess", "max_ranges", "predicate", "use_file_wrapper")


def filter_app_factory(app: WSGIApplication, global_conf: Mapping[str, object],
                       **local_conf: object) -> RangeMiddleware:
    """PasteDeploy ``paste.filter_app_factory`` entry point (``egg:rangewsgi``, name ``main``).

    ``global_conf`` (the ``[DEFAULT]`` section) is not read: only options written in the
    filter's own section configure it.
    """
    del global_conf
    unknown = sorted(set(local_conf) - set(_OPTIONS))
    if unknown:
        raise ConfigError(
            f"rangewsgi: unknown option(s) {', '.join(unknown)}; "
            f"known options are {', '.join(_OPTIONS)}")
    # Options left out keep the defaults of RangeMiddleware's own signature.
    given = {**(RangeMiddleware.__init__.__kwdefaults__ or {}), **local_conf}
    max_ranges = parse_int("max_ranges", given["max_ranges"])
    max_multipart_excess = parse_int("max_multipart_excess", given["max_multipart_excess"])
    block_size = parse_int("block_size", given["block_size"])
    file_wrapper_min_size = parse_int("file_wrapper_min_size", given["file_wrapper_min_size"])
    use_file_wrapper = parse_bool("use_file_wrapper", given["use_file_wrapper"])
    conditional = parse_bool("conditional", given["conditional"])
    file_validators = parse_bool("file_validators", given["file_validators"])
    predicate = _predicate("predicate", given["predicate"] or "")
    try:
        return RangeMiddleware(app, max_ranges=max_ranges,
                               max_multipart_excess=max_multipart_excess, predicate=predicate,
                               use_file_wrapper=use_file_wrapper,
                               file_wrapper_min_size=file_wrapper_min_size,
                               block_size=block_size, conditional=conditional,
                               file_validators=file_validators)
    except ValueError as exc:  # the right type but out of range, e.g. max_ranges = 0
        raise ConfigError(f"rangewsgi: {exc}") from exc
