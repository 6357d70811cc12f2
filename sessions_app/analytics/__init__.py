"""Analytics: the per-session rollup the sync keeps, and the pages that chart it
(docs/analytics.md)."""
