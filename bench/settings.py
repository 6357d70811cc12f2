"""Settings for benchmarks: the portal's own, plus a bench-only URLconf with a trivial view.

Never used by the product; `bench.list_page` starts gunicorn with it.
"""

from __future__ import annotations

from julesweb.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
