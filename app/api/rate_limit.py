"""Per-principal request budgets (RATE_LIMIT, e.g. "600/minute"), kept by the `limits` library
in process memory with a moving window: a burst over the budget answers 429 with Retry-After."""

from __future__ import annotations

import math
import time

from limits import parse_many, storage, strategies


class RateLimiter:
    def __init__(self, spec: str):
        # "600/minute" or several at once: "20/second;600/minute".
        self.items = parse_many(spec)
        self._limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())

    def hit(self, key: str) -> int | None:
        """Counts one request for key; None when within every budget, else the seconds to wait."""
        for item in self.items:
            if not self._limiter.hit(item, key):
                reset_at = self._limiter.get_window_stats(item, key).reset_time
                return max(1, math.ceil(reset_at - time.time()))
        return None
