"""Fixtures for tests against the fake Binance venue; no test here may leave 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("ccxt")
pytest.importorskip("uvicorn")

from fake_binance import FakeBinance

_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", None})


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any name lookup for another host fails the test loudly."""
    real = socket.getaddrinfo

    def local_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in _LOCAL_HOSTS:
            raise AssertionError(f"a test tried to reach {host!r}; only 127.0.0.1 is allowed")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", local_only)


@pytest.fixture
def venue() -> Iterator[FakeBinance]:
    fake = FakeBinance().start()
    try:
        yield fake
    finally:
        fake.stop()
    assert fake.unexpected == [], f"ccxt called endpoints the fake venue lacks: {fake.unexpected}"
