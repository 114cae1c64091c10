"""Hand-crafted features: multiple-choice structure and the weak answer's checks."""

from __future__ import annotations

import math
import random
import re

import pytest

from routing_platform.engine.arithmetic import arithmetic_checks
from routing_platform.engine.quality.features import (
    _final_sentence,
    answer_features,
    prompt_features,
    split_multiple_choice,
)
from routing_platform.engine.quality.prompt_text import CAPITALISED

MC = "Which of these is NOT a prime?\nA. 2\nB. 3\nC. 4\nD. 5\nAnswer:"


def test_split_multiple_choice():
    """Choices are the trailing A-D lines; the question is the rest."""
    question, choices = split_multiple_choice(MC)
    assert question == "Which of these is NOT a prime?"
    assert choices == ["2", "3", "4", "5"]
    assert split_multiple_choice("Just a question?") == ("Just a question?", [])


def test_prompt_features_see_structure():
    """Negation, choice count and numeric choices are picked up; values are finite."""
    features = prompt_features(MC)
    assert features["negation_log"] > 0.0
    assert features["choices_n"] == 4.0
    assert features["choice_numeric"] == 1.0
    assert all(math.isfinite(value) for value in features.values())
    plain = prompt_features("Write a haiku.")
    assert plain["choices_n"] == 0.0 and plain["negation_log"] == 0.0
    assert prompt_features("It is not red.")["negation_log"] > 0.0


def test_similar_choices_score_higher_similarity():
    """Near-identical choices (fine distinctions) have a higher similarity feature."""
    alike = "Q?\nA. real GDP rises and prices fall\nB. real GDP falls and prices rise\nC. real GDP rises and prices rise\nD. real GDP falls and prices fall\nAnswer:"
    unlike = (
        "Q?\nA. a cat\nB. the industrial revolution\nC. 42\nD. photosynthesis in leaves\nAnswer:"
    )
    assert (
        prompt_features(alike)["choice_gram_similarity"]
        > prompt_features(unlike)["choice_gram_similarity"]
    )


def test_arithmetic_checks_find_wrong_results():
    """Wrong equations count as wrong; right ones (annotations, percentages) do not."""
    assert arithmetic_checks("(12 / 20) x 100 = 55%") == (1, 1)
    # The annotation and the sentence around it are both checked.
    assert arithmetic_checks("3 x 60 = <<3*60=180>>180 meters") == (2, 0)
    assert arithmetic_checks("8 x $5 x 60% = 24") == (1, 0)
    assert arithmetic_checks("So 5 * 75 + 120 = 795.") == (1, 1)
    assert arithmetic_checks("no numbers here") == (0, 0)


def test_answer_features_flag_truncated_and_final_answers():
    """A cut-off answer is truncated; a '#### 540' answer has a final marker."""
    cut = answer_features("15 + 25 = <<15+2")
    assert cut["answer_truncated"] == 1.0
    assert cut["answer_unfinished_annotation"] == 1.0
    done = answer_features("180 x 3 = <<180*3=540>>540 meters.\n#### 540")
    assert done["answer_final_marker"] == 1.0
    assert done["answer_truncated"] == 0.0
    assert done["answer_arithmetic_wrong"] == 0.0
    assert answer_features(None)["answer_present"] == 0.0


def test_evaluator_never_runs_code():
    """Only arithmetic is evaluated: anything else is skipped, not executed."""
    assert arithmetic_checks("__import__('os') = 1") == (0, 0)
    assert arithmetic_checks("2 ** 3 ** 4 = 5") == (0, 0)


def test_computation_features_count_the_load_of_a_word_problem():
    """Quantities, percentages, fractions, rates, units and names are counted; a plain
    question has none of them."""
    from routing_platform.engine.quality.features import computation_features

    problem = (
        "Maria buys 3 boxes of 12 eggs for $4.50 each. She uses 1/4 of them and sells 25% "
        "of the rest to Carlos at 2 dollars per dozen. Tom gives her 7 more eggs every day for a week. "
        "How many eggs are left?"
    )
    busy = computation_features(problem)
    plain = computation_features("Which organ pumps blood?")
    assert busy["quantities_distinct_log"] > plain["quantities_distinct_log"] == 0.0
    assert busy["percentages_log"] > 0 and busy["fractions_log"] > 0 and busy["decimals_log"] > 0
    assert busy["rates_log"] > 0 and busy["remainders_log"] > 0 and busy["units_distinct_log"] > 0
    assert busy["names_distinct_log"] > 0 and busy["number_words_log"] > 0
    assert busy["final_sentence_chars_log"] > 0 and busy["question_marks"] == 1.0
    assert plain["rates_log"] == plain["units_distinct_log"] == 0.0
    roman = computation_features("Which are true?\nA. I and III only\nB. II only")
    assert roman["roman_combination"] == 1.0


def test_final_sentence_is_the_last_part_of_splitting_at_sentence_breaks():
    """The fast search gives what splitting at every break and keeping the last part gave
    (seeded random strings of breaks, spaces of several kinds and letters)."""
    split = re.compile(r"(?<=[.?!])\s+")
    rng = random.Random(20)
    texts = ["", "  ", "One. Two? Three!", "a.  b c", "?!  x", "End.\n\n", "x.\u00a0y"]
    texts += ["".join(rng.choice(" .?!\n\tab\u00a0\u2003") for _ in range(12)) for _ in range(3000)]
    for text in texts:
        parts = [part for part in split.split(text.strip()) if part]
        assert _final_sentence(text) == (parts[-1] if parts else ""), repr(text)


def test_capitalised_words_match_the_word_boundary_pattern():
    """The look-behind form finds what ``\\b[A-Z][a-z]+`` finds (seeded random strings)."""
    boundary = re.compile(r"\b[A-Z][a-z]+")
    rng = random.Random(21)
    texts = ["Hello World", "aBc Def", "_Abc 1Abc éAbc Abc", "A", "Ab"]
    texts += ["".join(rng.choice(" Aa_1.éÉ\nZz") for _ in range(10)) for _ in range(3000)]
    for text in texts:
        assert CAPITALISED.findall(text) == boundary.findall(text), repr(text)


def test_feature_set_4_counts_a_word_problem_in_one_pass():
    """Set 4's vocabularies, quantities and character counts on a GSM8K-style problem."""
    problem = (
        "Sam earns $12 per hour and works 7.5 hours a day for 5 days in 2023. "
        "He spends 30% of it and gives away half. How many dollars are left?"
    )
    row = prompt_features(problem, 4)
    assert row["rates_log"] == pytest.approx(math.log1p(2))  # "per", "a day"
    assert row["time_units_log"] == pytest.approx(math.log1p(4))  # hour, hours, day, days
    assert row["remainders_log"] == pytest.approx(math.log1p(1))  # "left"
    assert row["fraction_words_log"] == pytest.approx(math.log1p(1))  # "half"
    assert row["quantities_log"] == pytest.approx(math.log1p(5))  # $12, 7.5, 5, 2023, 30%
    assert row["decimals_log"] == pytest.approx(math.log1p(1))
    assert row["years_log"] == pytest.approx(math.log1p(1))
    assert row["percent"] == 1.0 and row["money"] == 1.0 and row["question_mark"] == 1.0
    assert row["units_distinct_log"] == pytest.approx(math.log1p(3))  # dollar, hour, day


@pytest.mark.parametrize("version", [2, 3, 4])
def test_features_stay_finite_on_a_huge_number(version):
    """A 400-digit number is infinite as a float; its features stay finite in every set."""
    row = prompt_features("What is " + "9" * 400 + " plus one?", version)
    assert all(math.isfinite(value) for value in row.values())
