"""Fixtures every test shares: settings read afresh for each test.

The product reads its configuration once per process (`bot.core.settings.get_settings`). A
test that changes the environment with `monkeypatch.setenv`/`delenv` gets settings that
follow the change: the cache is cleared around each test and after each such call.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from bot.core.settings import reset_settings
from bot.core.stores import reset_memory_store


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Clear the settings cache before and after the test and on every env change."""
    setenv, delenv = monkeypatch.setenv, monkeypatch.delenv

    def set_and_reset(name: str, value: str, prepend: Any = None) -> None:
        setenv(name, value, prepend)
        reset_settings()

    def del_and_reset(name: str, raising: bool = True) -> None:
        delenv(name, raising)
        reset_settings()

    monkeypatch.setenv = set_and_reset  # type: ignore[method-assign]
    monkeypatch.delenv = del_and_reset  # type: ignore[method-assign]
    reset_settings()
    reset_memory_store()  # rate limits and "seen before?" marks of earlier tests
    yield
    reset_settings()
