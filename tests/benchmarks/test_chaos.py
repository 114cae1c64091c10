"""The chaos suite's accounting: answers matched to rows by marker (the run itself is `make chaos`)."""

from __future__ import annotations

from collections import Counter

from benchmarks.chaos import (
    Outcome,
    Scenario,
    attempts_by_marker,
    figures_for,
    flaky_failure,
    no_fault,
    tally,
)


def test_tally_counts_lost_duplicate_open_and_malformed_5xx():
    """Lost = 2xx without a row; duplicates = >1 row; open = queued/running rows; a 503
    without Retry-After, a 500 and a 502 without its error row are malformed 5xx."""
    outcomes = [
        Outcome("chaos-s0-r0", "chat", 200, True),  # recorded once
        Outcome("chaos-s0-r1", "chat", 200, True),  # lost
        Outcome("chaos-s0-r2", "execute", 200, True),  # two rows
        Outcome("chaos-s0-r3", "execute-async", 202, True),  # still queued
        Outcome("chaos-s0-r4", "execute-async", 503, True, True),  # well-formed refusal
        Outcome("chaos-s0-r5", "execute-async", 503, True, False),  # no Retry-After
        Outcome("chaos-s0-r6", "execute", 500, False),
        Outcome("chaos-s0-r7", "execute", 502, True),  # upstream gave up, error row exists
        Outcome("chaos-s0-r8", "execute", 502, True),  # ... and here it does not
        Outcome("chaos-s0-r9", "chat", 0),  # no answer: not acknowledged
    ]
    rows = {
        "chaos-s0-r0": [("success", "")],
        "chaos-s0-r2": [("success", ""), ("success", "")],
        "chaos-s0-r3": [("queued", "")],
        "chaos-s0-r7": [("error", "ProviderError")],
    }
    result = tally(outcomes, rows)
    assert (result.sent, result.acknowledged, result.lost, result.stranded) == (10, 4, 1, 0)
    assert (result.duplicates, result.open_after_reconcile) == (1, 1)
    assert (result.bad_5xx, result.unanswered) == (3, 1)


def test_figures_judge_every_count_against_zero():
    result = tally([Outcome("chaos-s1-r0", "chat", 200, True)], {})
    figures = figures_for(Scenario("x", no_fault), result, "note")
    assert [f["met"] for f in figures] == [False, True, True, True, True]
    assert figures[0]["value"] == 1 and "1 of 1 answered 2xx" in figures[0]["notes"]


def test_loss_without_persistence_in_warn_mode_is_counted_not_judged():
    result = tally([Outcome("chaos-s1-r0", "chat", 200, True)], {})
    volatile = Scenario("volatile", no_fault, redis_durable=False)
    lost, *others = figures_for(volatile, result, "note")
    assert lost["value"] == 1 and lost["met"] is None and "documented loss" in lost["target"]
    assert [f["met"] for f in others] == [True, True, True, True]
    synced = Scenario("sync", no_fault, redis_durable=False, require_durable="sync")
    assert figures_for(synced, result, "note")[0]["met"] is False


def test_a_record_still_in_redis_is_stranded_not_lost():
    """Acknowledged, no row, but its record waits in the call-records list: stranded."""
    outcomes = [
        Outcome("chaos-s2-r0", "chat", 200, True),
        Outcome("chaos-s2-r1", "chat", 200, True),
    ]
    result = tally(outcomes, {}, frozenset({"chaos-s2-r1"}))
    assert (result.lost, result.stranded) == (1, 1)


def test_attempts_are_counted_per_marker_from_the_request_bodies():
    """One count per HTTP request the SDK sent; a body without a marker is not a call."""
    bodies = [
        b'{"messages":[{"content":"chaos-s7-r0: explain"}]}',
        b'{"messages":[{"content":"chaos-s7-r1: explain"}]}',
        b'{"messages":[{"content":"chaos-s7-r0: explain"}]}',
        b'{"messages":[{"content":"chaos-s7-r0: explain"}]}',
        b'{"model":"router"}',
    ]
    assert attempts_by_marker(bodies) == {"chaos-s7-r0": 3, "chaos-s7-r1": 1}


def test_an_sdk_retry_that_left_two_rows_is_a_duplicate_and_is_counted_as_retried():
    """A 502 retried by the SDK into a 200: one logical call, an error row and a success
    row, so a duplicate; the figures' note says how many calls were sent again."""
    outcomes = [
        Outcome("chaos-s7-r0", "sdk-chat", 200, True, attempts=2),
        Outcome("chaos-s7-r1", "sdk-chat", 200, True),
        Outcome("chaos-s7-r2", "sdk-chat", 502, True, attempts=3),  # replayed 502: one row
    ]
    rows = {
        "chaos-s7-r0": [("error", "ProviderError"), ("success", "")],
        "chaos-s7-r1": [("success", "")],
        "chaos-s7-r2": [("error", "ProviderError")],
    }
    result = tally(outcomes, rows)
    assert (result.retried, result.requests, result.duplicates) == (2, 6, 1)
    assert (result.lost, result.bad_5xx) == (0, 0)
    duplicates = figures_for(Scenario("sdk", no_fault, sdk="plain"), result, "note")[2]
    assert duplicates["met"] is False
    assert "2 call(s) retried by the client, 6 HTTP requests for 3 calls" in duplicates["notes"]


def test_a_flaky_call_fails_every_attempt_of_its_first_request_only():
    """MAX_RETRIES + 1 = 3 upstream failures (the platform gives up: 502), then served;
    a call without the flaky word is never failed by this rule."""
    seen: Counter = Counter()
    flaky = b'{"messages":[{"content":"chaos-s7-r0 chaos-flaky: explain"}]}'
    plain = b'{"messages":[{"content":"chaos-s7-r1: explain"}]}'
    assert [flaky_failure(flaky, seen) for _ in range(5)] == [True, True, True, False, False]
    assert not flaky_failure(plain, seen)
    assert seen == {"chaos-s7-r0": 5}
