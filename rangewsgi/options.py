"""Checking the middleware's options once, when it is made, with a clear error each."""

from __future__ import annotations

__all__ = ["check_options"]

_INTEGERS = {  # option: (smallest value allowed, what the error says)
    "max_ranges": (1, "must be at least 1"),
    "max_multipart_excess": (0, "must not be negative"),
    "file_wrapper_min_size": (0, "must not be negative"),
    "block_size": (1, "must be positive"),
}
_BOOLEANS = ("use_file_wrapper", "conditional", "file_validators")


def check_options(*, predicate: object, **options: object) -> None:
    """Raise ``TypeError`` for an option of the wrong type, ``ValueError`` for one out of
    range; every option is checked here so that nothing fails later, per request."""
    if predicate is not None and not callable(predicate):
        raise TypeError("predicate must be a callable predicate(environ, headers, length) "
                        f"or None, not {predicate!r}")
    for name, value in options.items():
        if name in _INTEGERS:
            # bool is an int subclass; "10" is not an int: both are mistakes worth naming.
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an int, not {type(value).__name__} "
                                f"({value!r})")
            least, rule = _INTEGERS[name]
            if value < least:
                raise ValueError(f"{name} {rule}, not {value}")
        elif name in _BOOLEANS:
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be True or False, not {value!r}")
        else:
            raise TypeError(f"unknown option {name!r}")
