"""Shared test settings and fixtures: hypothesis profiles, loopback chat servers."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# Timing-based deadlines flake on a loaded 2-core machine; speed lives in benchmarks/.
settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "default"))



@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """The test API key, in the environment variable the chat-client tests name."""
    from tests.chat_server import SECRET

    monkeypatch.setenv("SHOP_R1_TEST_KEY", SECRET)
    return SECRET


@pytest.fixture
def serve(api_key: str) -> Iterator[Callable[..., Any]]:
    """Start scripted loopback chat servers (``serve(*replies, **options)``); all closed at the end."""
    from tests.chat_server import ChatServer

    servers: list[ChatServer] = []

    def start(*script: Any, **kwargs: Any) -> ChatServer:
        servers.append(ChatServer(list(script), **kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()
