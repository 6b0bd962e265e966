"""``rangewsgi.options``: one ``Options`` for every entry point.

Each option's default is written once (``Options``); both adapters, the PasteDeploy filter
and the command line read it from there. A wrong type is a ``TypeError`` and a value out of
range a ``ValueError`` when the middleware is made, never later, per request. A misspelt
name names its close match, and an option only the WSGI adapter has is refused by ASGI with
the reason.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, Literal, get_type_hints

import pytest

import rangewsgi.asgi
from rangewsgi import RangeMiddleware
from rangewsgi.options import (
    DEFAULTS,
    OPTION_SPECS,
    WSGI_ONLY,
    OptionKind,
    Options,
    make_options,
)
from rangewsgi.paste import ConfigError, filter_app_factory, parse_settings
from rangewsgi.plan import Headers, Limits

# Today's defaults, as the documentation states them (README, docs/api.md).
DOCUMENTED = {"max_ranges": 100, "max_multipart_excess": 4096, "predicate": None,
              "use_file_wrapper": True, "file_wrapper_min_size": 32 * 1024,
              "block_size": 64 * 1024, "conditional": True, "file_validators": True}


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def ranged_only(environ: Any, headers: Headers, length: int) -> bool:
    """A predicate for the ini settings below to name."""
    return length > 0


# -- defaults, written once --

def test_defaults_are_the_documented_ones() -> None:
    assert dict(DEFAULTS) == DOCUMENTED
    made = Options()
    assert {name: getattr(made, name) for name in DEFAULTS} == DOCUMENTED
    assert made.limits == Limits(100, 4096)


@pytest.mark.parametrize("middleware", [RangeMiddleware, rangewsgi.asgi.RangeMiddleware],
                         ids=["wsgi", "asgi"])
def test_the_constructors_use_the_same_defaults(middleware: type[Any]) -> None:
    app = wsgi_app if middleware is RangeMiddleware else asgi_app
    made = middleware(app).options
    for name, default in DEFAULTS.items():
        assert getattr(made, name) == default, name
    assert made.limits == Options().limits
    # Keyword defaults a constructor still spells out must be the same values.
    for parameter in inspect.signature(middleware).parameters.values():
        if parameter.kind is parameter.KEYWORD_ONLY and parameter.name in DEFAULTS:
            assert parameter.default == DEFAULTS[parameter.name], parameter.name


def test_specs_follow_the_dataclass_fields() -> None:
    names = [item.name for item in dataclasses.fields(Options) if item.init]
    assert list(OPTION_SPECS) == names == list(DEFAULTS)
    assert WSGI_ONLY == {"use_file_wrapper", "file_wrapper_min_size"} < set(OPTION_SPECS)
    # The kind each reader of strings goes by agrees with the field's annotation.
    hints = get_type_hints(Options)
    expected = {OptionKind.INT: int, OptionKind.BOOL: bool,
                OptionKind.VALIDATORS: bool | Literal["content"],
                OptionKind.CALLABLE: Callable[[Any, Headers, int], bool] | None}
    for name, spec in OPTION_SPECS.items():
        assert hints[name] == expected[spec.kind], name
        assert (spec.least is not None) == (spec.kind is OptionKind.INT), name


def test_options_are_frozen_and_limits_made_once() -> None:
    made = Options(max_ranges=7, max_multipart_excess=9)
    assert made.limits == Limits(7, 9)
    assert made.limits is made.limits
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.max_ranges = 8  # type: ignore[misc]
    assert not hasattr(made, "__dict__")  # slots
    assert made == Options(max_ranges=7, max_multipart_excess=9)
    assert made != Options()
    with pytest.raises(TypeError):
        Options(limits=Limits(1, 1))  # type: ignore[call-arg]


# -- every option's type and range --

WRONG_TYPE = [
    ("max_ranges", "10", "max_ranges must be an int, not str ('10')"),
    ("max_ranges", True, "max_ranges must be an int, not bool (True)"),
    ("max_ranges", 2.0, "max_ranges must be an int, not float (2.0)"),
    ("max_multipart_excess", None, "max_multipart_excess must be an int, not NoneType"),
    ("max_multipart_excess", False, "max_multipart_excess must be an int, not bool"),
    ("file_wrapper_min_size", "0", "file_wrapper_min_size must be an int, not str"),
    ("file_wrapper_min_size", True, "file_wrapper_min_size must be an int, not bool"),
    ("block_size", 1.5, "block_size must be an int, not float (1.5)"),
    ("block_size", True, "block_size must be an int, not bool"),
    ("predicate", 42, "predicate must be a callable predicate(environ or scope, headers, "
                      "length) or None, not 42"),
    ("predicate", "mod:func", "predicate must be a callable"),
    ("use_file_wrapper", "no", "use_file_wrapper must be True or False, not 'no'"),
    ("use_file_wrapper", 1, "use_file_wrapper must be True or False, not 1"),
    ("conditional", 0, "conditional must be True or False, not 0"),
    ("conditional", None, "conditional must be True or False, not None"),
    ("file_validators", None, "file_validators must be True or False (or 'content'), not None"),
    ("file_validators", 1, "file_validators must be True or False (or 'content'), not 1"),
]

OUT_OF_RANGE = [
    ("max_ranges", 0, "max_ranges must be at least 1, not 0"),
    ("max_ranges", -5, "max_ranges must be at least 1, not -5"),
    ("max_multipart_excess", -1, "max_multipart_excess must not be negative, not -1"),
    ("file_wrapper_min_size", -1, "file_wrapper_min_size must not be negative, not -1"),
    ("block_size", 0, "block_size must be positive, not 0"),
    ("file_validators", "Content", "file_validators must be True or False (or 'content'), "
                                   "not 'Content'"),
    ("file_validators", "", "file_validators must be True or False (or 'content'), not ''"),
]

# The smallest or otherwise edge values each option takes.
ACCEPTED = [
    ("max_ranges", 1), ("max_multipart_excess", 0), ("file_wrapper_min_size", 0),
    ("block_size", 1), ("predicate", ranged_only), ("predicate", None),
    ("use_file_wrapper", False), ("conditional", False), ("file_validators", False),
    ("file_validators", "content"), ("max_ranges", 10**9),
]


def test_every_option_has_its_errors_tested() -> None:
    assert {name for name, _, _ in WRONG_TYPE} == set(OPTION_SPECS)
    ranged = {name for name, spec in OPTION_SPECS.items() if spec.least is not None}
    assert ranged <= {name for name, _, _ in OUT_OF_RANGE}
    assert {name for name, _ in ACCEPTED} == set(OPTION_SPECS)


@pytest.mark.parametrize(("name", "value", "message"), WRONG_TYPE)
def test_wrong_type_is_a_type_error(name: str, value: object, message: str) -> None:
    with pytest.raises(TypeError) as info:
        Options(**{name: value})
    assert str(info.value) == message or str(info.value).startswith(message)


@pytest.mark.parametrize(("name", "value", "message"), OUT_OF_RANGE)
def test_out_of_range_is_a_value_error(name: str, value: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        Options(**{name: value})
    assert str(info.value) == message


@pytest.mark.parametrize(("name", "value"), ACCEPTED)
def test_edge_values_are_taken(name: str, value: object) -> None:
    made = Options(**{name: value})
    assert getattr(made, name) is value


@pytest.mark.parametrize(("name", "value", "message"), WRONG_TYPE[:3] + OUT_OF_RANGE[:1])
@pytest.mark.parametrize("middleware", [RangeMiddleware, rangewsgi.asgi.RangeMiddleware],
                         ids=["wsgi", "asgi"])
def test_the_constructors_check_when_made(middleware: type[Any], name: str, value: object,
                                          message: str) -> None:
    app = wsgi_app if middleware is RangeMiddleware else asgi_app
    with pytest.raises((TypeError, ValueError), match=message.split(" (")[0]):
        middleware(app, **{name: value})


# -- by name: make_options --

@pytest.mark.parametrize(("given", "close"), [
    ("max_range", "max_ranges"),
    ("maxranges", "max_ranges"),
    ("max_multipart_exces", "max_multipart_excess"),
    ("blocksize", "block_size"),
    ("conditionals", "conditional"),
    ("file_validator", "file_validators"),
    ("predicat", "predicate"),
    ("use_filewrapper", "use_file_wrapper"),
])
def test_unknown_name_names_the_close_match(given: str, close: str) -> None:
    with pytest.raises(TypeError) as info:
        make_options("wsgi", {given: 1})
    assert str(info.value) == f"unknown option {given!r}: did you mean {close!r}?"


@pytest.mark.parametrize("adapter", ["wsgi", "asgi"])
def test_unknown_name_without_a_close_match_lists_the_options(
        adapter: Literal["wsgi", "asgi"]) -> None:
    with pytest.raises(TypeError) as info:
        make_options(adapter, {"gzip": True})
    valid = [name for name in OPTION_SPECS if adapter == "wsgi" or name not in WSGI_ONLY]
    assert str(info.value) == f"unknown option 'gzip'; the options are {', '.join(valid)}"


@pytest.mark.parametrize("name", sorted(WSGI_ONLY))
def test_wsgi_only_options_are_refused_by_asgi(name: str) -> None:
    value = DEFAULTS[name]
    with pytest.raises(TypeError) as info:
        make_options("asgi", {name: value})
    message = str(info.value)
    assert message.startswith(f"{name} is a WSGI-only option: ")
    assert "reads files itself" in message and "pathsend" in message
    assert getattr(make_options("wsgi", {name: value}), name) == value


def test_asgi_does_not_suggest_a_wsgi_only_option() -> None:
    with pytest.raises(TypeError) as info:
        make_options("asgi", {"use_file_wraper": True})
    assert "did you mean" not in str(info.value)
    assert "use_file_wrapper" not in str(info.value).split(";", 1)[1]


def test_make_options_builds_the_same_options() -> None:
    given = {"max_ranges": 5, "predicate": ranged_only, "file_validators": "content"}
    assert make_options("wsgi", given) == Options(**given)
    assert make_options("asgi", given) == Options(**given)
    assert make_options("asgi", {}) == Options()
    with pytest.raises(TypeError, match="max_ranges must be an int"):
        make_options("asgi", {"max_ranges": "5"})
    with pytest.raises(ValueError, match="adapter must be 'wsgi' or 'asgi'"):
        make_options("http", {})  # type: ignore[arg-type]


# -- PasteDeploy: ini strings through the same table --

def test_ini_strings_become_typed_options() -> None:
    parsed = parse_settings({
        "max_ranges": " 20 ", "max_multipart_excess": "0", "use_file_wrapper": "FALSE",
        "file_wrapper_min_size": "1024", "block_size": "4096", "conditional": "true",
        "file_validators": "content", "predicate": "test_options:ranged_only"})
    assert parsed == {"max_ranges": 20, "max_multipart_excess": 0, "use_file_wrapper": False,
                      "file_wrapper_min_size": 1024, "block_size": 4096, "conditional": True,
                      "file_validators": "content", "predicate": ranged_only}
    assert parse_settings({"file_validators": "False", "predicate": " "}) == {
        "file_validators": False, "predicate": None}


def test_ini_defaults_come_from_options() -> None:
    assert parse_settings({}) == {}
    wrapped = filter_app_factory(wsgi_app, {"max_ranges": "3"})  # [DEFAULT] is not read
    assert wrapped.options == RangeMiddleware(wsgi_app).options


def test_ini_file_validators_content_reaches_the_middleware() -> None:
    wrapped = filter_app_factory(wsgi_app, {}, file_validators="content", max_ranges="7")
    assert isinstance(wrapped, RangeMiddleware)
    assert wrapped.options.file_validators == "content"
    assert wrapped.options.max_ranges == 7
    assert wrapped.options.block_size == DEFAULTS["block_size"]


@pytest.mark.parametrize(("settings", "message"), [
    ({"max_range": "10"}, "rangewsgi: unknown option 'max_range': did you mean 'max_ranges'?"),
    ({"gzip": "true"}, "rangewsgi: unknown option 'gzip'; the options are max_ranges, "),
    ({"max_ranges": "0"}, "rangewsgi: max_ranges must be at least 1, not 0"),
    ({"block_size": "0"}, "rangewsgi: block_size must be positive, not 0"),
    ({"max_ranges": "-1"}, "rangewsgi: max_ranges must be a whole number, got '-1'"),
    ({"max_ranges": "1_000"}, "rangewsgi: max_ranges must be a whole number"),
    ({"conditional": "yes"}, "rangewsgi: conditional must be true or false, got 'yes'"),
    ({"file_validators": "contents"},
     "rangewsgi: file_validators must be true, false or content, got 'contents'"),
    ({"predicate": "test_options.ranged_only"}, "rangewsgi: predicate must look like"),
])
def test_bad_ini_settings_are_config_errors(settings: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(settings)
    assert str(info.value).startswith(message)
    with pytest.raises(ConfigError):
        filter_app_factory(wsgi_app, {}, **settings)
