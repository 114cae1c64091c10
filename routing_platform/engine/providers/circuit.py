"""A circuit breaker per provider: skip a provider that keeps failing, then probe it again.

closed --(failure_threshold consecutive failures)--> open --(reset_after_s)--> half-open
half-open lets one probe through: success closes the circuit, failure re-opens it.
Only failures that say the provider is unwell count (retryable errors after retries, auth
errors); a 400 for a bad request is the caller's problem and does not trip it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from routing_platform.engine.errors import ProviderAuthError, ProviderError

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


def counts_as_failure(error: ProviderError) -> bool:
    return error.retryable or isinstance(error, ProviderAuthError)


class CircuitBreaker:
    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        reset_after_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset_after_s = reset_after_s
        self._clock = clock
        self.state = CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self._probe_in_flight = False

    def allow(self) -> bool:
        if self.state == CLOSED:
            return True
        if self.state == OPEN and self._clock() - self.opened_at >= self.reset_after_s:
            self.state = HALF_OPEN
            self._probe_in_flight = False
        if self.state == HALF_OPEN and not self._probe_in_flight:
            self._probe_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        self.state = CLOSED
        self.failures = 0
        self._probe_in_flight = False

    def record_failure(self) -> None:
        self.failures += 1
        self._probe_in_flight = False
        if self.state == HALF_OPEN or self.failures >= self.failure_threshold:
            self.state = OPEN
            self.opened_at = self._clock()

    def retry_in_s(self) -> float:
        return max(0.0, self.reset_after_s - (self._clock() - self.opened_at))
