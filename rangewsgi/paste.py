"""PasteDeploy filter: ``[filter:range]`` with ``use = egg:rangewsgi`` in an ini file.

Ini values arrive as strings; ``filter_app_factory`` turns them into the typed options of
``RangeMiddleware``::

    [filter:range]
    use = egg:rangewsgi
    max_ranges = 20
    file_wrapper_min_size = 1048576
    file_validators = content
    predicate = myproject.ranging:only_media

    [pipeline:main]
    pipeline = range myapp

Integers are plain ASCII decimals, booleans are ``true`` or ``false`` (any case),
``file_validators`` is also ``content`` (validators derived from the file's content), and
``predicate`` names a callable as ``module:attribute`` (dots allowed on both sides). The
option names, kinds, rules and defaults are those of ``rangewsgi.options.Options``: an option
left out keeps its default there. Anything else, including an option name the middleware does
not know (named with its close match), raises ``ConfigError``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from .middleware import Predicate, RangeMiddleware
from .options import OPTION_SPECS, OptionKind, check_names, make_options

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

__all__ = ["ConfigError", "filter_app_factory", "parse_bool", "parse_int", "parse_settings",
           "parse_validators", "resolve_callable"]

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


def parse_validators(name: str, value: object) -> bool | str:
    """``file_validators``: ``true``, ``false`` or ``content`` (any case)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip(_BLANK).lower()
        if text in ("true", "false"):
            return text == "true"
        if text == "content":
            return text
    raise ConfigError(f"rangewsgi: {name} must be true, false or content, got {value!r}")


# How the ini string of each kind of option (``Options``' field metadata) becomes its value.
_PARSERS: dict[OptionKind, Callable[[str, object], object]] = {
    OptionKind.INT: parse_int,
    OptionKind.BOOL: parse_bool,
    OptionKind.CALLABLE: _predicate,
    OptionKind.VALIDATORS: parse_validators,
}


def parse_settings(settings: Mapping[str, object]) -> dict[str, object]:
    """The typed options of an ini section's string ``settings``, checked as ``Options``
    checks them; options left out are left out (``Options`` holds the defaults)."""
    try:
        check_names("wsgi", settings)
    except TypeError as exc:  # an unknown name, with its close match
        raise ConfigError(f"rangewsgi: {exc}") from None
    given = {name: _PARSERS[OPTION_SPECS[name].kind](name, value)
             for name, value in settings.items()}
    try:
        make_options("wsgi", given)
    except (TypeError, ValueError) as exc:  # the right form but out of range: max_ranges = 0
        raise ConfigError(f"rangewsgi: {exc}") from exc
    return given


def filter_app_factory(app: WSGIApplication, global_conf: Mapping[str, object],
                       **local_conf: object) -> RangeMiddleware:
    """PasteDeploy ``paste.filter_app_factory`` entry point (``egg:rangewsgi``, name ``main``).

    ``global_conf`` (the ``[DEFAULT]`` section) is not read: only options written in the
    filter's own section configure it.
    """
    del global_conf
    return RangeMiddleware(app, **cast("dict[str, Any]", parse_settings(local_conf)))
