"""Fixtures of the compliance tests: the library loaded, and a way to run one check."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from compliance.checks import registry


@pytest.fixture
def loaded_library(db):
    from compliance import library
    from core.actors import SystemActor

    return library.library_load(actor=SystemActor("tests")).library


@pytest.fixture
def run_check() -> Callable[[str], registry.Outcome]:
    def run(name: str) -> registry.Outcome:
        function = registry.get(name)
        assert function is not None, f"check {name} is not registered"
        return function()

    return run
