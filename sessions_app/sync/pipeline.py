"""A writer thread for the sync's bulk writes, so downloads go on while PostgreSQL works.

The writes of one batch run on their own thread and database connection, in the order
they were submitted, while the caller downloads and prepares the next batch; psycopg
releases the GIL while it waits on the server, so the database's work hides behind the
downloads. At most `depth` batches wait, which bounds the memory a large sync holds.

The first failure of a write stops the later ones and is raised to the caller at its next
`submit` or when the block ends. Without a thread (`threaded=False`: SQLite, or inside a
transaction that another connection could not see; the store decides) each write runs
at once, inline.
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
    def __init__(self, *, threaded: bool, depth: int = 2) -> None:
        # What the writes count (written by the writer's thread only); the caller merges it.
        self.report = SyncReport()
        self._error: BaseException | None = None
        self._queue: queue.Queue[_Item | None] = queue.Queue(maxsize=max(1, depth))
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(target=self._run, name="jules-sync-writer", daemon=True)
            self._thread.start()

    def submit(self, function: Callable[..., Any], *args: Any) -> None:
        """Run `function(*args)` after the writes submitted before it."""
        self._raise()
        if self._thread is None:
            function(*args)
            return
        self._queue.put((function, args, {}, None))

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        """Run `function(*args, **kwargs)` in turn; its result or failure in a future."""
        self._raise()
        future: Future[T] = Future()
        if self._thread is None:
            try:
                future.set_result(function(*args, **kwargs))
            except Exception as exc:
                future.set_exception(exc)
            return future
        self._queue.put((function, args, kwargs, future))
        return future

    def close(self) -> None:
        """Wait for every submitted write; raise the first failure."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _run(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                function, args, kwargs, future = item
                if self._error is not None:
                    # Drain: the caller learns of the failure at its next step.
                    if future is not None:
                        future.set_exception(self._error)
                    continue
                try:
                    result = function(*args, **kwargs)
                except BaseException as exc:
                    if future is None:
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
