"""The complexity classifier: deterministic, explainable, sensible."""

from __future__ import annotations

import pytest

from routing_platform.engine.classifier import TASK_TYPES, classify


def test_short_classification_prompt_is_simple_with_reasons():
    """A one-line labelling request is simple, and the reasons name what drove the score."""
    result = classify("Is this review positive or negative? 'Great phone.'", "classification")
    assert result.complexity == "simple"
    assert result.score < 0.35
    assert any("task type classification" in reason for reason in result.reasons)


def test_long_reasoning_prompt_with_deep_work_is_complex():
    """Reasoning + proof + step-by-step + math + length is complex."""
    text = (
        "Prove step by step that for every integer n > 1 the sum 1 + 2 + ... + n = n(n+1)/2, "
        "then derive the closed form of the sum of squares and justify each step rigorously. "
        "Discuss edge cases and the complexity of computing it naively. " * 3
    )
    result = classify(text, "reasoning")
    assert result.complexity == "complex"
    assert any("deep work" in reason for reason in result.reasons)
    assert any("characters" in reason for reason in result.reasons)


def test_medium_analysis():
    """A typical analysis question lands in the middle."""
    result = classify(
        "Analyze the trade-offs between a monolith and microservices for a five-person startup.",
        "analysis",
    )
    assert result.complexity == "medium"


def test_classification_is_deterministic():
    """Same input, same output, every time."""
    text = "Write a Python function that merges two sorted lists.\n```python\ndef merge(a, b):\n```"
    assert len({classify(text, "code") for _ in range(50)}) == 1


def test_code_and_short_answer_signals_move_the_score():
    """Code raises the score; asking for a one-word answer lowers it."""
    plain = classify("Explain what this does", "code").score
    with_code = classify("Explain what this does\n```\ndef f(): pass\n```", "code").score
    short = classify("Explain what this does, in one word", "code").score
    assert with_code > plain > short


def test_longer_prompts_score_higher():
    """Length adds to the score, monotonically."""
    scores = [classify("word " * n, "summarization").score for n in (5, 100, 1000, 5000)]
    assert scores == sorted(scores)
    assert scores[-1] > scores[0]


def test_unknown_task_type_is_treated_as_analysis_and_says_so():
    """An unknown task type does not crash; the reasons say it was treated as analysis."""
    result = classify("hello", "poetry-slam")
    assert result.task_type == "analysis"
    assert "unknown task type" in result.reasons[0]


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_score_is_in_unit_interval(task_type):
    """Scores are clamped to [0, 1] for every task type, even for extreme inputs."""
    huge = "Prove, derive, optimize, refactor, debug? " * 2000
    for text in ("", "x", huge):
        result = classify(text, task_type)
        assert 0.0 <= result.score <= 1.0
        assert result.complexity in ("simple", "medium", "complex")
