"""Writer threads for the sync's bulk writes, so downloads go on while PostgreSQL works.

Each write runs on a writer thread with its own database connection and transaction,
while the caller downloads and prepares the next batch; psycopg releases the GIL while it
waits on the server, so the database's work hides behind the downloads. With one thread
the writes run in the order they were submitted. With more (`threads`), a write starts as
soon as a thread is free and runs beside the others, so one write's waits on PostgreSQL
overlap the next one's preparation: only writes that touch different sessions may be
submitted together (a page of a listing, a batch of activities). At most `depth` writes
wait for a thread, which bounds the memory a large sync holds.

Each write counts into a report of its own (`new_report`), so no two threads ever update
one; `merge_into` adds them up once the writes are done. The first failure of a write
stops the later ones and is raised to the caller at its next `submit` or when the block
ends. Without a thread (`threaded=False`: SQLite, or inside a transaction that another
connection could not see; the store decides) each write runs at once, inline.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from types import TracebackType
from typing import Any, TypeVar

from django.db import connections

from sessions_app.sync.writers import SyncReport

logger = logging.getLogger(__name__)

T = TypeVar("T")
# A write: the function, its arguments, and the future of its result (None: fire and forget).
_Item = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], "Future[Any] | None"]


class Writer:
    def __init__(self, *, threaded: bool, depth: int = 2, threads: int = 1) -> None:
        # One per write, made and merged on the caller's thread (`new_report`).
        self._reports: list[SyncReport] = []
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._queue: queue.Queue[_Item | None] = queue.Queue(maxsize=max(1, depth))
        # How many threads may start; 0 writes inline (also once closed).
        self._most = max(1, threads) if threaded else 0
        # Threads start as writes arrive, so a pass with one write opens one connection.
        self._threads: list[threading.Thread] = []
        self._idle = 0

    @property
    def threads(self) -> int:
        """How many writes may run at once (0: inline)."""
        return self._most

    def new_report(self) -> SyncReport:
        """A report for one write to count into; call on the caller's thread."""
        report = SyncReport()
        self._reports.append(report)
        return report

    def merge_into(self, report: SyncReport) -> None:
        """Add what the finished writes counted to `report`."""
        for counted in self._reports:
            report.merge(counted)
        self._reports = []

    def submit(self, function: Callable[..., Any], *args: Any) -> None:
        """Run `function(*args)` after the writes submitted before it (with several
        threads: once those have started)."""
        self._raise()
        if not self._most:
            function(*args)
            return
        self._put((function, args, {}, None))

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        """Run `function(*args, **kwargs)` in turn; its result or failure in a future."""
        self._raise()
        future: Future[T] = Future()
        if not self._most:
            try:
                future.set_result(function(*args, **kwargs))
            except Exception as exc:
                future.set_exception(exc)
            return future
        self._put((function, args, kwargs, future))
        return future

    def _put(self, item: _Item) -> None:
        with self._lock:
            if self._idle == 0 and len(self._threads) < self._most:
                thread = threading.Thread(
                    target=self._run, name=f"jules-sync-writer-{len(self._threads)}", daemon=True
                )
                thread.start()
                self._threads.append(thread)
        self._queue.put(item)

    def close(self) -> None:
        """Wait for every submitted write; raise the first failure."""
        with self._lock:
            started, self._threads, self._most = self._threads, [], 0
        for _ in started:
            self._queue.put(None)
        for thread in started:
            thread.join()
        self._raise()

    def _raise(self) -> None:
        with self._lock:
            error, self._error = self._error, None
        if error is not None:
            raise error

    def _run(self) -> None:
        try:
            while True:
                with self._lock:
                    self._idle += 1
                item = self._queue.get()
                with self._lock:
                    self._idle -= 1
                if item is None:
                    return
                function, args, kwargs, future = item
                failed = self._error
                if failed is not None:
                    # Drain: the caller learns of the failure at its next step.
                    if future is not None:
                        future.set_exception(failed)
                    continue
                try:
                    result = function(*args, **kwargs)
                except BaseException as exc:
                    if future is None:
                        with self._lock:
                            if self._error is None:
                                self._error = exc
                    else:
                        future.set_exception(exc)
                else:
                    if future is not None:
                        future.set_result(result)
        finally:
            # This thread's own database connection.
            connections.close_all()

    def __enter__(self) -> Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        # The caller is already failing: finish the queued writes, keep its exception.
        try:
            self.close()
        except Exception:
            logger.exception("A sync write failed while the sync was already failing")
