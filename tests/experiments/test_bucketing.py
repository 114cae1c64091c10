"""Bucketing: GrowthBook v1/v2 hash vectors, bucket ranges, arm choice and ramp stability."""

from __future__ import annotations

import pytest

from experiments.bucketing import (
    assign_arm,
    bucket_ranges,
    choose_arm,
    equal_weights,
    fnv1a32,
    gb_hash,
    in_sample,
)


@pytest.mark.parametrize(
    ("seed", "value", "version", "expected"),
    [
        # The vectors the issue quotes (GrowthBook's published test cases).
        ("seed", "a", 2, 0.0505),
        ("seed", "b", 2, 0.2696),
        ("foo", "ab", 2, 0.2575),
        ("", "a", 1, 0.22),
        # More of GrowthBook's cases.json "hash" vectors (v1, empty seed).
        ("", "b", 1, 0.077),
        ("", "ab", 1, 0.946),
        ("", "def", 1, 0.652),
        ("", "8952klfjas09ujkasdf", 1, 0.549),
        ("", "123", 1, 0.011),
        ("", '___)((*":&', 1, 0.563),
    ],
)
def test_gb_hash_matches_growthbook_vectors(seed, value, version, expected):
    """gb_hash reproduces GrowthBook's published hash values for versions 1 and 2."""
    assert gb_hash(seed, value, version) == pytest.approx(expected, abs=1e-12)


def test_gb_hash_unknown_version_is_none():
    """An unknown hash version gives None instead of a made-up number."""
    assert gb_hash("seed", "a", 3) is None
    assert gb_hash("seed", "a", 0) is None


@pytest.mark.parametrize(
    "value",
    [
        "",
        "a",
        "user-42",
        "x" * 32,
        "x" * 33,
        "y" * 200,
        "ünïcødé-用户",
        "用" * 40,
        "\U0001f600" * 5,
    ],
)
@pytest.mark.parametrize("seed", ["", "smart-routing-rollout", "é-seed"])
def test_gb_hash_v2_is_the_composed_fnv1a32_for_short_long_and_unicode_ids(seed, value):
    """The inlined hot path (mask deferred on short ids, every step on long ones) equals
    fnv1a32(str(fnv1a32(seed + value))) % 10000 / 10000 on either side of the cut."""
    assert gb_hash(seed, value, 2) == (fnv1a32(str(fnv1a32(seed + value))) % 10000) / 10000


def test_fnv1a32_reference_values():
    """FNV-1a 32 of '' is the offset basis and of 'a' the published 0xe40c292c."""
    assert fnv1a32("") == 0x811C9DC5
    assert fnv1a32("a") == 0xE40C292C


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((2, 1, None), [(0, 0.5), (0.5, 1)]),
        ((2, 0.5, None), [(0, 0.25), (0.5, 0.75)]),
        ((2, 0, None), [(0, 0), (0.5, 0.5)]),
        ((4, 1, None), [(0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1)]),
        ((2, 1, [0.4, 0.6]), [(0, 0.4), (0.4, 1)]),
        ((3, 1, [0.2, 0.3, 0.5]), [(0, 0.2), (0.2, 0.5), (0.5, 1)]),
        ((3, 0.2, [0.2, 0.3, 0.5]), [(0, 0.04), (0.2, 0.26), (0.5, 0.6)]),
        ((2, -0.2, None), [(0, 0), (0.5, 0.5)]),
        ((2, 1.5, None), [(0, 0.5), (0.5, 1)]),
        ((2, 1, [0.4, 0.1]), [(0, 0.5), (0.5, 1)]),
        ((2, 1, [0.7, 0.6]), [(0, 0.5), (0.5, 1)]),
        ((4, 1, [0.4, 0.4, 0.2]), [(0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1)]),
        ((2, 1, [0.4, 0.5999]), [(0, 0.4), (0.4, 0.9999)]),
    ],
)
def test_bucket_ranges_match_growthbook_cases(args, expected):
    """bucket_ranges clamps coverage, falls back to equal weights, and matches GrowthBook."""
    ranges = bucket_ranges(*args)
    assert len(ranges) == len(expected)
    for (start, end), (want_start, want_end) in zip(ranges, expected, strict=True):
        assert start == pytest.approx(want_start, abs=1e-9)
        assert end == pytest.approx(want_end, abs=1e-9)


@pytest.mark.parametrize(
    ("n", "ranges", "expected"),
    [
        (0.2, [(0, 0.5), (0.5, 1)], 0),
        (0.6, [(0, 0.5), (0.5, 1)], 1),
        (0.5, [(0, 0.5), (0.5, 1)], 1),  # ranges are half-open: the start belongs to the range
        (0.3, [(0, 0.25), (0.5, 0.75)], -1),
        (0.0, [(0, 0), (0.5, 0.5)], -1),
        (0.99, [(0, 0.5), (0.5, 0.99)], -1),
    ],
)
def test_choose_arm(n, ranges, expected):
    """choose_arm gives the range index holding n, or -1 when no range holds it."""
    assert choose_arm(n, ranges) == expected


def test_equal_weights():
    """Equal weights sum to one; no arms means no weights."""
    assert equal_weights(4) == [0.25] * 4
    assert equal_weights(0) == []


def test_growthbook_experiment_cases_choose_same_variation():
    """Units '123', '456', 'fds' of GrowthBook's 3-way experiment 'feature' get c, a, b."""
    weights = equal_weights(3)
    assert assign_arm(seed="feature", unit_id="123", weights=weights, version=1) == 2
    assert assign_arm(seed="feature", unit_id="456", weights=weights, version=1) == 0
    assert assign_arm(seed="feature", unit_id="fds", weights=weights, version=1) == 1


def test_assign_arm_rejects_unknown_hash_version():
    """assign_arm refuses a hash version it cannot compute, naming the allowed ones."""
    with pytest.raises(ValueError, match="use 1 or 2"):
        assign_arm(seed="s", unit_id="u", weights=[0.5, 0.5], version=9)


def test_ramping_1_to_100_percent_never_moves_a_unit():
    """Ramping coverage 1% -> 5% -> 25% -> 50% -> 100% over 100,000 units only adds units."""
    seed, weights = "smart-routing-rollout", [0.5, 0.5]
    units = [f"user-{i}" for i in range(100_000)]
    positions = [gb_hash(seed, unit, 2) for unit in units]
    previous: list[int] | None = None
    for percentage in (1, 5, 25, 50, 100):
        ranges = bucket_ranges(2, percentage / 100, weights)
        arms = [choose_arm(n, ranges) for n in positions]
        entered = sum(arm != -1 for arm in arms)
        # The share in the experiment tracks the coverage (loose bound: +-1 point).
        assert abs(entered / len(units) - percentage / 100) < 0.01
        if previous is not None:
            moved = sum(
                1
                for before, now in zip(previous, arms, strict=True)
                if before != -1 and now != before
            )
            assert moved == 0
            assert entered >= sum(arm != -1 for arm in previous)
        previous = arms
    assert -1 not in previous  # at 100% everyone is in


def test_weights_split_units_in_proportion():
    """A 20/80 split puts about 20% of 20,000 units in the first arm."""
    ranges = bucket_ranges(2, 1.0, [0.2, 0.8])
    arms = [choose_arm(gb_hash("split", f"u{i}", 2), ranges) for i in range(20_000)]
    share = arms.count(0) / len(arms)
    assert 0.19 < share < 0.21


def test_in_sample_is_deterministic_and_proportional():
    """in_sample is stable for a unit and true for about the requested share."""
    draws = [in_sample(seed="exp", unit_id=f"c{i}", share=0.2) for i in range(20_000)]
    assert draws == [in_sample(seed="exp", unit_id=f"c{i}", share=0.2) for i in range(20_000)]
    assert 0.19 < sum(draws) / len(draws) < 0.21
    assert not any(in_sample(seed="exp", unit_id=f"c{i}", share=0) for i in range(100))
    assert all(in_sample(seed="exp", unit_id=f"c{i}", share=1) for i in range(100))
