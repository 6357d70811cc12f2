"""Unit tests run Celery eagerly, in-process, on SQLite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from julesweb.celery import app as celery_app


@pytest.fixture(autouse=True)
def _eager_celery() -> Iterator[None]:
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = previous
