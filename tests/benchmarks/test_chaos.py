"""The chaos suite's accounting: answers matched to rows by marker (the run itself is `make chaos`)."""

from __future__ import annotations

from benchmarks.chaos import Outcome, Scenario, figures_for, no_fault, tally


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


def test_a_record_still_in_redis_is_stranded_not_lost():
    """Acknowledged, no row, but its record waits in the call-records list: stranded."""
    outcomes = [
        Outcome("chaos-s2-r0", "chat", 200, True),
        Outcome("chaos-s2-r1", "chat", 200, True),
    ]
    result = tally(outcomes, {}, frozenset({"chaos-s2-r1"}))
    assert (result.lost, result.stranded) == (1, 1)
