"""The middleware's options: each one, its default and its rule written once, here.

``Options`` is what both adapters (WSGI, ASGI), the PasteDeploy filter and the command line
build; it is checked once when it is made, so that nothing fails later, per request.
``make_options`` builds it from keyword arguments by name, naming the close match of a
misspelt name and refusing the options that only the WSGI adapter has.

``OPTION_SPECS`` describes every option (name, default, kind, lower bound) from the dataclass
fields, for readers of string settings (an ini file, a command line) that must not repeat the
defaults.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from types import MappingProxyType
from typing import Any, Literal, NamedTuple, cast

from .plan import Headers, Limits

__all__ = ["DEFAULTS", "OPTION_SPECS", "WSGI_ONLY", "OptionKind", "OptionSpec", "Options",
           "ValidatorMode", "check_names", "make_options"]


class OptionKind(enum.Enum):
    """What values an option takes."""

    INT = "int"  # an int (never a bool) of at least ``OptionSpec.least``
    BOOL = "bool"  # True or False
    CALLABLE = "callable"  # a callable, or None
    VALIDATORS = "validators"  # True, False or "content"


class _Rule(NamedTuple):
    """The check of one option, kept in its dataclass field's metadata."""

    kind: OptionKind
    least: int | None = None  # for INT: the smallest value allowed
    says: str = ""  # for INT: what the ValueError says of the bound


_KEY = "rangewsgi"  # the metadata key of a field's ``_Rule``


def _count(least: int, says: str) -> Mapping[str, _Rule]:
    return {_KEY: _Rule(OptionKind.INT, least, says)}


def _kind(kind: OptionKind) -> Mapping[str, _Rule]:
    return {_KEY: _Rule(kind)}


ValidatorMode = bool | Literal["content"]


@dataclass(frozen=True, slots=True)
class Options:
    """The middleware's options, checked once when they are made.

    ``TypeError`` for a value of the wrong type (``bool`` is not taken as an int, nor ``"10"``
    as a number), ``ValueError`` for one out of range.
    """

    max_ranges: int = field(default=100, metadata=_count(1, "must be at least 1"))
    """More range-specs than this in one ``Range`` field and the field is ignored: the whole
    ``200`` is sent (RFC 9110 14.2 lets a server ignore Range; 17.15 asks it to limit
    egregious requests)."""

    max_multipart_excess: int = field(default=4096, metadata=_count(0, "must not be negative"))
    """A multipart answer more than this many bytes larger than the whole representation is
    not sent; the ``Range`` field is ignored (``200``) instead (RFC 9110 17.15)."""

    predicate: Callable[[Any, Headers, int], bool] | None = field(
        default=None, metadata=_kind(OptionKind.CALLABLE))
    """``predicate(environ or scope, headers, length)``; when it returns False the ``200``
    passes through untouched (no ranges, no ``Accept-Ranges``, no ``304``/``412``)."""

    use_file_wrapper: bool = field(default=True, metadata=_kind(OptionKind.BOOL))
    """WSGI only: hand windows of plain files on disk back to the server's
    ``wsgi.file_wrapper`` (zero-copy) where that server is proven to send exactly them;
    every other body is read by the middleware."""

    file_wrapper_min_size: int = field(default=32 * 1024,
                                       metadata=_count(0, "must not be negative"))
    """WSGI only: windows shorter than this are read by the middleware instead of the
    server's ``wsgi.file_wrapper``: for a few KiB one read costs less than sendfile."""

    block_size: int = field(default=64 * 1024, metadata=_count(1, "must be positive"))
    """Read size for file bodies the middleware reads itself (and, on WSGI, the block size
    of the ``wsgi.file_wrapper`` it offers when the app names none)."""

    conditional: bool = field(default=True, metadata=_kind(OptionKind.BOOL))
    """Evaluate ``If-Match``, ``If-Unmodified-Since``, ``If-None-Match`` and
    ``If-Modified-Since`` for GET and HEAD (RFC 9110 13.2.2): ``412`` and ``304``."""

    file_validators: ValidatorMode = field(default=True,
                                           metadata=_kind(OptionKind.VALIDATORS))
    """Give file bodies without ``ETag`` and ``Last-Modified`` validators (RFC 9110 8.8):
    True for a strong ``ETag`` from size and modification time plus a ``Last-Modified``,
    ``"content"`` for validators derived from the file's content, False for none."""

    limits: Limits = field(init=False, repr=False, compare=False)
    """``max_ranges`` and ``max_multipart_excess`` as the pure core reads them."""

    def __post_init__(self) -> None:
        for spec in OPTION_SPECS.values():
            _check(spec, getattr(self, spec.name))
        # Made once here, not per request (a frozen dataclass sets it this way).
        object.__setattr__(self, "limits", Limits(self.max_ranges, self.max_multipart_excess))


class OptionSpec(NamedTuple):
    """One option as a reader of string settings needs it."""

    name: str
    default: object
    kind: OptionKind
    least: int | None  # for ``OptionKind.INT``: the smallest value allowed
    says: str  # for ``OptionKind.INT``: the rule the bound expresses


def _specs() -> dict[str, OptionSpec]:
    specs = {}
    for item in fields(Options):
        if not item.init:
            continue  # derived (``limits``), not an option
        rule = item.metadata[_KEY]
        assert item.default is not MISSING  # every option has a default
        specs[item.name] = OptionSpec(item.name, item.default, rule.kind, rule.least,
                                      rule.says)
    return specs


OPTION_SPECS: Mapping[str, OptionSpec] = MappingProxyType(_specs())
"""Every option by name, in the order of ``Options``' fields."""

DEFAULTS: Mapping[str, object] = MappingProxyType(
    {name: spec.default for name, spec in OPTION_SPECS.items()})
"""Every option's default by name."""

WSGI_ONLY: frozenset[str] = frozenset({"use_file_wrapper", "file_wrapper_min_size"})
"""Options only the WSGI adapter reads: they tune ``wsgi.file_wrapper``, which ASGI lacks."""

_WHY_WSGI_ONLY = ("the ASGI adapter reads files itself (a file sent with "
                  "http.response.pathsend is read by the middleware; ASGI has no "
                  "wsgi.file_wrapper to hand it to)")


# -- checking one value --

def _check(spec: OptionSpec, value: object) -> None:
    """Raise ``TypeError`` or ``ValueError`` when ``value`` breaks ``spec``'s rule."""
    _CHECKS[spec.kind](spec, value)


def _check_int(spec: OptionSpec, value: object) -> None:
    # bool is an int subclass; "10" is not an int: both are mistakes worth naming.
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{spec.name} must be an int, not {type(value).__name__} ({value!r})")
    if spec.least is not None and value < spec.least:
        raise ValueError(f"{spec.name} {spec.says}, not {value}")


def _check_bool(spec: OptionSpec, value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{spec.name} must be True or False, not {value!r}")


def _check_callable(spec: OptionSpec, value: object) -> None:
    if value is not None and not callable(value):
        raise TypeError(f"{spec.name} must be a callable {spec.name}(environ or scope, "
                        f"headers, length) or None, not {value!r}")


def _check_validators(spec: OptionSpec, value: object) -> None:
    if isinstance(value, bool) or value == "content":
        return
    says = f"{spec.name} must be True or False (or 'content'), not {value!r}"
    if isinstance(value, str):
        raise ValueError(says)  # a string, but not the one mode a string names
    raise TypeError(says)


_CHECKS: dict[OptionKind, Callable[[OptionSpec, object], None]] = {
    OptionKind.INT: _check_int,
    OptionKind.BOOL: _check_bool,
    OptionKind.CALLABLE: _check_callable,
    OptionKind.VALIDATORS: _check_validators,
}


# -- building from names --

def _valid_names(adapter: Literal["wsgi", "asgi"]) -> list[str]:
    if adapter == "wsgi":
        return list(OPTION_SPECS)
    if adapter == "asgi":
        return [name for name in OPTION_SPECS if name not in WSGI_ONLY]
    raise ValueError(f"adapter must be 'wsgi' or 'asgi', not {adapter!r}")


def _unknown(name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(name, valid, n=1)
    if close:
        return f"unknown option {name!r}: did you mean {close[0]!r}?"
    return f"unknown option {name!r}; the options are {', '.join(valid)}"


def check_names(adapter: Literal["wsgi", "asgi"], names: Iterable[str]) -> None:
    """Raise ``TypeError`` for the first name that is no option of ``adapter``: a
    WSGI-only option given to ``"asgi"`` says so and why; any other unknown name names its
    close match, or the valid names when none is close."""
    valid = _valid_names(adapter)
    for name in names:
        if name in valid:
            continue
        if name in WSGI_ONLY:
            raise TypeError(f"{name} is a WSGI-only option: {_WHY_WSGI_ONLY}")
        raise TypeError(_unknown(name, valid))


def make_options(adapter: Literal["wsgi", "asgi"], given: Mapping[str, object]) -> Options:
    """``Options`` from keyword arguments by name, for the ``adapter`` they are meant for;
    options left out keep their defaults."""
    check_names(adapter, given)
    return Options(**cast("Mapping[str, Any]", given))

