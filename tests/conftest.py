"""Test configuration: hypothesis profiles (``--hypothesis-profile=long`` for deep runs)."""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("long", max_examples=20_000, deadline=None)
settings.register_profile("default", max_examples=300, deadline=None)
settings.load_profile("default")
