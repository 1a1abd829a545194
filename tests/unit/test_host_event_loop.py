"""The host's event loop keeps short waits to the microsecond and still delivers I/O.

epoll's timeout counts whole milliseconds; the host's selector waits through select(2) on
the epoll descriptor for short timeouts instead. These tests pin the behaviour, not speed:
which wait is used, that events still arrive, and that a wait never ends early.
"""

from __future__ import annotations

import asyncio
import select
import selectors
import socket
import time
from typing import Any

import pytest

from orchestration.host import event_loop

pytestmark = pytest.mark.skipif(
    not hasattr(selectors, "EpollSelector"), reason="the precise selector is epoll's (Linux)"
)


def test_a_short_wait_goes_through_select_with_its_exact_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[float] = []
    real_select = select.select

    def recording(r: Any, w: Any, x: Any, timeout: float) -> Any:
        asked.append(timeout)
        return real_select(r, w, x, timeout)

    monkeypatch.setattr(event_loop.select, "select", recording)
    with event_loop.PreciseEpollSelector() as selector:
        selector.select(0.0023)
        selector.select(event_loop.PRECISE_BELOW)  # a long wait: epoll's own timeout
    assert asked == [0.0023]


def test_a_descriptor_select_cannot_take_keeps_epolls_own_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*_args: Any) -> Any:
        raise AssertionError("select(2) takes descriptors below FD_SETSIZE only")

    monkeypatch.setattr(event_loop, "_SELECT_FD_LIMIT", 0)
    monkeypatch.setattr(event_loop.select, "select", refuse)
    with event_loop.PreciseEpollSelector() as selector:
        assert selector.select(0.001) == []


def test_a_short_wait_never_ends_before_its_timeout() -> None:
    with event_loop.PreciseEpollSelector() as selector:
        for timeout in (0.0002, 0.0015, 0.004):
            started = time.monotonic()
            assert selector.select(timeout) == []
            assert time.monotonic() - started >= timeout


def test_a_ready_descriptor_is_reported_during_a_short_wait() -> None:
    left, right = socket.socketpair()
    with left, right, event_loop.PreciseEpollSelector() as selector:
        selector.register(left, selectors.EVENT_READ, "left")
        right.send(b"x")
        ready = selector.select(0.05)
        assert [(key.data, events) for key, events in ready] == [("left", selectors.EVENT_READ)]


def test_the_host_loop_runs_coroutines_and_timers() -> None:
    async def main() -> str:
        loop = asyncio.get_running_loop()
        assert isinstance(loop._selector, event_loop.PreciseEpollSelector)  # type: ignore[attr-defined]
        due = loop.time() + 0.003
        await asyncio.sleep(0.003)
        assert loop.time() >= due
        return "done"

    assert event_loop.run(main()) == "done"
