"""Sticky, deterministic bucketing, compatible with GrowthBook's hashing (v1 and v2).

Pure functions, no Django: a unit's bucket is a number in [0, 1) derived from a seed (the
experiment key or the phase's hash seed) and the unit id with 32-bit FNV-1a, exactly as
the GrowthBook SDKs compute it (``growthbook/core.py``: ``gbhash``, ``getBucketRanges``,
``chooseVariation``), so a GrowthBook SDK given the same seed, unit and weights puts the
unit in the same arm.

Why ramping never moves a unit: each arm owns a fixed slice ``[start, start + weight)`` of
[0, 1); the traffic coverage only shrinks every slice from its *start*, to
``[start, start + coverage * weight)``. Raising the coverage lengthens every slice, so a
unit already inside a slice stays inside the same slice; units outside all slices are
simply not in the experiment yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

_FNV32_OFFSET = 0x811C9DC5
_FNV32_PRIME = 0x01000193
_UINT32_MASK = 0xFFFFFFFF
_DEFERRED_MASK_MAX_CHARS = 32


def _fnv1a32_continue(state: int, text: str) -> int:
    """Feed ``text`` into an FNV-1a 32 state, one code point at a time.

    ASCII text (unit ids, keys) is iterated as bytes, whose values are its code points,
    which is several times faster than ``ord`` per character.
    """
    data = text.encode("ascii") if text.isascii() else map(ord, text)
    for code in data:
        state = ((state ^ code) * _FNV32_PRIME) & _UINT32_MASK
    return state


def fnv1a32(text: str) -> int:
    """32-bit FNV-1a over the code points of ``text`` (as GrowthBook's Python SDK does)."""
    return _fnv1a32_continue(_FNV32_OFFSET, text)


@lru_cache(maxsize=1024)
def _seed_state(seed: str) -> int:
    # FNV-1a is a stream: hashing seed + value continues from the state after the seed,
    # so the seed's part is computed once per seed.
    return fnv1a32(seed)


def gb_hash(seed: str, value: str, version: int) -> float | None:
    """The unit's position in [0, 1): GrowthBook hash ``version`` 1 or 2; None otherwise.

    v2 = fnv1a32(str(fnv1a32(seed + value))) % 10000 / 10000 (four decimals, well mixed);
    v1 = fnv1a32(value + seed) % 1000 / 1000 (the legacy hash, three decimals).
    """
    if version == 2:
        # Inlined FNV-1a loops: this is the hot path of every assignment. Reducing mod 2**32
        # commutes with the multiply and with xor-ing a code point below 2**32, so a short
        # input is masked once at the end instead of every step (the integer grows 24 bits a
        # step, cheap for a few dozen steps); a long one is masked every step.
        state = _seed_state(seed)
        codes = value.encode("ascii") if value.isascii() else map(ord, value)
        if len(value) <= _DEFERRED_MASK_MAX_CHARS:
            for code in codes:
                state = (state ^ code) * _FNV32_PRIME
            state &= _UINT32_MASK
        else:
            for code in codes:
                state = ((state ^ code) * _FNV32_PRIME) & _UINT32_MASK
        outer = _FNV32_OFFSET
        for code in str(state).encode("ascii"):  # at most 10 digits
            outer = (outer ^ code) * _FNV32_PRIME
        return ((outer & _UINT32_MASK) % 10000) / 10000
    if version == 1:
        return (fnv1a32(value + seed) % 1000) / 1000
    return None


def equal_weights(num_arms: int) -> list[float]:
    """``num_arms`` equal fractions summing to 1 (empty for fewer than one arm)."""
    if num_arms < 1:
        return []
    return [1.0 / num_arms] * num_arms


def bucket_ranges(
    num_arms: int, coverage: float = 1.0, weights: Sequence[float] | None = None
) -> list[tuple[float, float]]:
    """Each arm's slice of [0, 1): ``[start, start + coverage * weight)``.

    ``coverage`` (the share of units in the experiment) is clamped to [0, 1]. ``weights``
    are fractions; None, a wrong length, or a sum outside [0.99, 1.01] falls back to
    equal weights, as in GrowthBook.
    """
    coverage = min(max(coverage, 0.0), 1.0)
    if weights is None or len(weights) != num_arms:
        weights = equal_weights(num_arms)
    total = sum(weights)
    if total < 0.99 or total > 1.01:
        weights = equal_weights(num_arms)
    ranges: list[tuple[float, float]] = []
    cumulative = 0.0
    for weight in weights:
        start = cumulative
        cumulative += weight
        ranges.append((start, start + coverage * weight))
    return ranges


def in_range(n: float, bucket: tuple[float, float]) -> bool:
    """Whether ``n`` falls in the half-open range ``[start, end)``."""
    return bucket[0] <= n < bucket[1]


def choose_arm(n: float, ranges: Sequence[tuple[float, float]]) -> int:
    """The index of the range holding ``n``, or -1 when ``n`` is in none (not in the experiment)."""
    for index, bucket in enumerate(ranges):
        if in_range(n, bucket):
            return index
    return -1


def assign_arm(
    *, seed: str, unit_id: str, weights: Sequence[float], coverage: float = 1.0, version: int = 2
) -> int:
    """The arm index of ``unit_id`` for a phase's seed, weights and coverage; -1 if not in it."""
    n = gb_hash(seed, unit_id, version)
    if n is None:
        raise ValueError(f"Unknown hash version {version!r}: use 1 or 2.")
    return choose_arm(n, bucket_ranges(len(weights), coverage, weights))


def in_sample(*, seed: str, unit_id: str, share: float) -> bool:
    """A deterministic coin with P(True) = ``share`` (e.g. whether a call also runs in shadow).

    It uses its own seed namespace so it is independent of the arm assignment.
    """
    n = gb_hash(f"{seed}:sample", unit_id, 2)
    return n is not None and n < min(max(share, 0.0), 1.0)
