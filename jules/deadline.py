"""One wall-clock deadline for a whole HTTP exchange: docs/reliability.md#remote-deadline

A socket timeout bounds each read, not their sum, so a server that sends a byte a second
(in its headers or its body) would hold the caller for as long as it likes. A watchdog
thread shuts the socket of an exchange whose deadline passed, which ends the blocked read
at once; the client then reports the deadline rather than a broken connection.

The client's own `requests` adapter uses connection classes that tell the watch which
socket the exchange runs on (`DeadlineAdapter`); arming a watch costs a lock and a heap
push, and the thread wakes only when a deadline falls due (at most four times a second).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import socket
import threading
import time
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

# Deadlines are checked on this grid, so many exchanges share one wake-up.
GRANULARITY = 0.25

_local = threading.local()


class Watch:
    """One exchange under a deadline; `fired` once the watchdog ended it."""

    __slots__ = ("conn", "deadline", "done", "fired")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.conn: Any = None
        self.done = False
        self.fired = False

    def expired(self) -> bool:
        return self.fired or time.monotonic() >= self.deadline


class _Watchdog:
    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._heap: list[tuple[float, int, Watch]] = []
        self._order = itertools.count()
        self._pid = -1

    def arm(self, deadline: float) -> Watch:
        watch = Watch(deadline)
        with self._lock:
            if self._pid != os.getpid():
                # First use in this process (a forked worker inherits no thread).
                self._pid = os.getpid()
                self._heap.clear()
                threading.Thread(target=self._run, name="jules-deadline", daemon=True).start()
            earliest = self._heap[0][0] if self._heap else None
            heapq.heappush(self._heap, (deadline, next(self._order), watch))
            if earliest is None or deadline < earliest:
                self._lock.notify()
        return watch

    def _run(self) -> None:
        with self._lock:
            while True:
                if not self._heap:
                    self._lock.wait()
                    continue
                now = time.monotonic()
                due = self._heap[0][0]
                if due > now:
                    self._lock.wait(max(due - now, GRANULARITY))
                    continue
                while self._heap and self._heap[0][0] <= now:
                    _, _, watch = heapq.heappop(self._heap)
                    if watch.done:
                        continue
                    if not _shut(watch):
                        # Still connecting (the connect timeout bounds that): look again.
                        heapq.heappush(self._heap, (now + GRANULARITY, next(self._order), watch))


def _shut(watch: Watch) -> bool:
    sock = getattr(watch.conn, "sock", None)
    if sock is None:
        return False
    watch.fired = True
    with contextlib.suppress(OSError):  # Already closed: nothing left to end.
        sock.shutdown(socket.SHUT_RDWR)
    return True


_WATCHDOG = _Watchdog()


def arm(deadline: float) -> Watch:
    """Watch the exchange that this thread starts next; `disarm` it when it is over."""
    watch = _WATCHDOG.arm(deadline)
    _local.watch = watch
    return watch


def disarm(watch: Watch) -> None:
    watch.done = True
    if getattr(_local, "watch", None) is watch:
        _local.watch = None


class _Watched:
    """Connects the exchange this thread armed to this connection's socket."""

    def request(self, *args: Any, **kwargs: Any) -> None:
        watch = getattr(_local, "watch", None)
        if watch is not None:
            watch.conn = self
        super().request(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class DeadlineAdapter(HTTPAdapter):
    """`HTTPAdapter` whose connections (direct or through an HTTP proxy) can be watched."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = dict(_POOLS)
        return manager
