"""The portal's cache on Redis, treating an unreachable Redis as an empty cache.

Everything the portal caches (the session list's counts, for instance) can be recomputed
from the database, so a Redis outage must cost speed, not pages: reads answer as misses,
writes are dropped, each with a warning in the log. Connecting and reading time out after
a second or two (settings), so that a Redis that vanished without closing its connections
does not hold a request either. See docs/reliability.md (the Redis drill).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

UNREACHABLE = (RedisConnectionError, RedisTimeoutError)
T = TypeVar("T")


def _or(fallback: T, call: Callable[[], T], what: str) -> T:
    try:
        return call()
    except UNREACHABLE as exc:
        logger.warning("The cache is unreachable (%s); %s", type(exc).__name__, what)
        return fallback


class ResilientRedisCache(RedisCache):
    """Django's Redis cache, with a Redis outage answered as misses and dropped writes."""

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        return _or(
            default, lambda: super(ResilientRedisCache, self).get(key, default, version), "a miss"
        )

    def get_many(self, keys: Any, version: int | None = None) -> dict[str, Any]:
        return _or({}, lambda: super(ResilientRedisCache, self).get_many(keys, version), "misses")

    def has_key(self, key: Any, version: int | None = None) -> bool:
        return _or(False, lambda: super(ResilientRedisCache, self).has_key(key, version), "a miss")

    def add(self, key: Any, value: Any, timeout: Any = None, version: int | None = None) -> bool:
        return _or(
            False,
            lambda: super(ResilientRedisCache, self).add(key, value, timeout, version),
            "not stored",
        )

    def set(self, key: Any, value: Any, timeout: Any = None, version: int | None = None) -> None:
        _or(
            None,
            lambda: super(ResilientRedisCache, self).set(key, value, timeout, version),
            "not stored",
        )

    def set_many(
        self, data: dict[Any, Any], timeout: Any = None, version: int | None = None
    ) -> list[Any]:
        return _or(
            list(data),
            lambda: super(ResilientRedisCache, self).set_many(data, timeout, version),
            "not stored",
        )

    def touch(self, key: Any, timeout: Any = None, version: int | None = None) -> bool:
        return _or(
            False,
            lambda: super(ResilientRedisCache, self).touch(key, timeout, version),
            "not touched",
        )

    def delete(self, key: Any, version: int | None = None) -> bool:
        return _or(
            False, lambda: super(ResilientRedisCache, self).delete(key, version), "not deleted"
        )

    def delete_many(self, keys: Any, version: int | None = None) -> None:
        _or(
            None, lambda: super(ResilientRedisCache, self).delete_many(keys, version), "not deleted"
        )
