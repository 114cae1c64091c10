"""Hand-crafted text features for routing: the prompt's structure, and the weak answer's.

Plain Python over strings (no model, no download), so a learned router featurises a
prompt in well under a millisecond. Two groups:

- :func:`prompt_features`: what the question looks like. Length, multiple-choice structure
  (how long and how alike the choices are: near-identical choices ask for fine
  distinctions), negations (NOT / EXCEPT), numbers and operators, reasoning cues.
- :func:`answer_features`: what the weak model's answer looks like, for cascade routing.
  Whether it reaches a final answer, whether it was cut off, hedging and self-corrections,
  and whether the arithmetic written in it is right (``12 / 20 x 100 = 55`` is checked).

`FEATURE_VERSION` changes whenever a feature changes meaning; a learned router records
the version it was trained with, and is served with it:

- set 2: the whole prompt;
- set 3: set 2 read on a bounded window of the prompt (its first and last `WINDOW_CHARS`
  characters), with the lengths still measured on the whole prompt;
- set 4 (the default, `features_onepass.py`): what set 3 measures, computed in one pass
  over the question's window, at about half of set 3's cost (the decision's budget).
"""

from __future__ import annotations

import math
import os
import re
import zlib
from collections import Counter

from routing_platform.engine.arithmetic import arithmetic_checks
from routing_platform.engine.quality.features_onepass import prompt_features_onepass
from routing_platform.engine.quality.prompt_text import (
    ALL_ABOVE,
    CALCULATE_PHRASES,
    CALCULATE_WORDS,
    CAPITALISED,
    CODE,
    CODE_LITERALS,
    COMPARISON_PHRASES,
    COMPARISON_WORDS,
    CONDITIONAL_WORDS,
    DECIMAL,
    DECREASE_WORDS,
    DEFINITION_PHRASES,
    DIGIT,
    EQUATION_WORDS,
    FORMULA,
    FRACTION,
    FRACTION_WORDS,
    INCREASE_WORDS,
    MONEY,
    NAME,
    NEGATION_UPPER,
    NEGATION_UPPER_WORDS,
    NEGATION_WORDS,
    NUMBER,
    NUMBER_WORDS,
    PERCENT,
    PERSON_WORDS,
    QUANTITY,
    RATE_PHRASES,
    RATE_WORDS,
    REMAINDER_WORDS,
    ROMAN,
    ROMAN_COMBINATION,
    SCENARIO_WORDS,
    SENTENCE_BREAK,
    SENTENCE_END,
    STEP_WORDS,
    SUPERLATIVE_WORDS,
    SYMBOLS,
    TIME_WORDS,
    TOKEN,
    TRUE_FALSE_WORDS,
    UNIT_OF,
    WORD,
    YEAR,
    jaccard,
    quantity_value,
    split_multiple_choice,
    trigrams,
    window,
)

FEATURE_VERSION = 4
FEATURE_VERSIONS = (2, 3, 4)  # the sets this code computes (a router records its own)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _share(flags) -> float:
    flags = list(flags)
    return sum(1.0 for flag in flags if flag) / len(flags) if flags else 0.0


def _tally(counts: dict[str, int], vocabulary: frozenset[str]) -> int:
    """How many of the counted words are in `vocabulary` (a look-up per vocabulary word)."""
    return sum([counts[word] for word in vocabulary.intersection(counts)])


def _word_counts(words: list[str]) -> dict[str, int]:
    return Counter(words)


def _found(pattern: re.Pattern, text: str, literals: tuple[str, ...]) -> bool:
    """`pattern` occurs in `text`; `literals` hold a substring of every match, so a text
    holding none of them (a fast substring test) is not scanned by the regex at all."""
    return any(literal in text for literal in literals) and bool(pattern.search(text))


def _final_sentence(text: str) -> str:
    """The text after its last sentence break (all of it, stripped, without one): the last
    part of splitting at the breaks, found without a look-behind tried at every position."""
    text = text.strip()
    ends = [match.end() for match in SENTENCE_BREAK.finditer(text)]
    return text[ends[-1] :] if ends else text


def computation_features(prompt: str) -> dict[str, float]:
    """Computation load and structure of the whole prompt: how many quantities (distinct,
    per sentence, largest), decimals, fractions, percentages, number words, comparisons,
    rates, remainders, units, named entities, equations, chemical formulas, roman-numeral
    combinations, conditionals, and the final question's length."""
    quantities = QUANTITY.findall(prompt)
    values = [value for value in map(quantity_value, quantities) if value is not None]
    sentences = max(1, len(SENTENCE_END.findall(prompt)))
    final = _final_sentence(prompt)
    lower = prompt.lower()
    counts = _word_counts(TOKEN.findall(lower))

    def tally(words: frozenset[str], phrases: tuple[str, ...] = ()) -> int:
        return _tally(counts, words) + sum(map(lower.count, phrases))

    units = {UNIT_OF[token] for token in counts if token in UNIT_OF}
    return {
        "quantities_distinct_log": math.log1p(len(set(values))),
        "quantities_per_sentence": len(quantities) / sentences,
        "quantity_max_log": math.log1p(max(values, default=0.0)),
        "quantity_digits_log": math.log1p(sum(len(token) for token in quantities)),
        "decimals_log": math.log1p(len(DECIMAL.findall(prompt))),
        "fractions_log": math.log1p(len(FRACTION.findall(prompt)) if "/" in prompt else 0),
        "number_words_log": math.log1p(tally(NUMBER_WORDS)),
        "percentages_log": math.log1p(prompt.count("%") + lower.count("percent")),
        "comparisons_log": math.log1p(tally(COMPARISON_WORDS, COMPARISON_PHRASES)),
        "rates_log": math.log1p(tally(RATE_WORDS, RATE_PHRASES)),
        "remainders_log": math.log1p(tally(REMAINDER_WORDS, ("gave away",))),
        "units_distinct_log": math.log1p(len(units)),
        "names_distinct_log": math.log1p(len(set(NAME.findall(prompt)))),
        "equations_log": math.log1p(
            sum(map(prompt.count, "=<>≤≥^√∫")) + prompt.count("log") + tally(EQUATION_WORDS)
        ),
        "formulas_log": math.log1p(len(FORMULA.findall(prompt))),
        "roman_combination": float(bool(ROMAN_COMBINATION.search(prompt))),
        "conditionals_log": math.log1p(tally(CONDITIONAL_WORDS, ("given that",))),
        "final_sentence_chars_log": math.log1p(len(final)),
        "final_sentence_quantities": float(len(QUANTITY.findall(final))),
        "sentences_all_log": math.log1p(sentences),
        "question_marks": float(prompt.count("?")),
    }


def prompt_features(prompt: str, version: int = FEATURE_VERSION) -> dict[str, float]:
    """Structure of a prompt (multiple-choice aware) in feature set `version`; every value
    is a finite float."""
    if version == 4:
        return prompt_features_onepass(prompt)
    question, choices = split_multiple_choice(prompt)
    if version == 2:
        return _structure_features(prompt, question, choices)
    if version != 3:
        raise ValueError(f"unknown feature set {version!r}; this code computes {FEATURE_VERSIONS}")
    row = _structure_features(window(prompt), window(question), list(map(window, choices)))
    # Lengths stay exact: a C-speed pass each, and the strongest single signal.
    row["prompt_chars_log"] = math.log1p(len(prompt))
    row["question_chars_log"] = math.log1p(len(question))
    row["question_words_log"] = math.log1p(len(question.split()))
    row["question_lines_log"] = math.log1p(question.count("\n"))
    return row


def _structure_features(prompt: str, question: str, choices: list[str]) -> dict[str, float]:
    """Feature set 2 of `prompt`, split into its `question` and `choices`."""
    lower = question.lower()
    word_list = WORD.findall(lower)
    word_counts = _word_counts(word_list)
    words = set(word_counts)
    raw_words = question.split()
    raw_lengths = list(map(len, raw_words))
    lengths = [len(choice) for choice in choices]
    choices_lower = [choice.lower() for choice in choices]
    choice_word_lists = [WORD.findall(choice) for choice in choices_lower]
    word_sets = [set(word) for word in choice_word_lists]
    all_choice_words = set().union(*word_sets) if word_sets else set()
    gram_sets = [trigrams(choice) for choice in choices_lower]
    pairs = [(i, j) for i in range(len(choices)) for j in range(i + 1, len(choices))]
    word_sims = [jaccard(word_sets[i], word_sets[j]) for i, j in pairs]
    gram_sims = [jaccard(gram_sets[i], gram_sets[j]) for i, j in pairs]
    joined_choices = " ".join(choices_lower)
    mean_length = _mean(lengths)
    return {
        "prompt_chars_log": math.log1p(len(prompt)),
        "question_chars_log": math.log1p(len(question)),
        "question_words_log": math.log1p(len(raw_words)),
        "question_lines_log": math.log1p(question.count("\n")),
        "choices_n": float(len(choices)),
        "choice_chars_mean_log": math.log1p(mean_length),
        "choice_chars_max_log": math.log1p(max(lengths, default=0)),
        "choice_chars_min_log": math.log1p(min(lengths, default=0)),
        "choice_chars_spread": (
            math.sqrt(_mean([(x - mean_length) ** 2 for x in lengths])) / (mean_length + 1)
        ),
        "choice_longest_ratio": max(lengths, default=0) / (mean_length + 1),
        "choice_words_mean_log": math.log1p(_mean([len(c.split()) for c in choices])),
        "choice_word_similarity": _mean(word_sims),
        "choice_word_similarity_max": max(word_sims, default=0.0),
        "choice_gram_similarity": _mean(gram_sims),
        "choice_gram_similarity_min": min(gram_sims, default=0.0),
        "choice_gram_similarity_max": max(gram_sims, default=0.0),
        "choice_common_prefix": (
            len(os.path.commonprefix(choices)) / (mean_length + 1) if choices else 0.0
        ),
        "choice_negation": _share(bool(s & NEGATION_WORDS) for s in word_sets),
        "choice_and": _share(" and " in choice for choice in choices_lower),
        "choice_single_word": _share(len(choice.split()) <= 1 for choice in choices),
        "choice_numeric": _share(
            len(choice.split()) <= 3 and bool(DIGIT.search(choice)) for choice in choices
        ),
        "choice_roman": float(any(_found(ROMAN, choice, ("I",)) for choice in choices)),
        "choice_all_above": float(_found(ALL_ABOVE, joined_choices, (" of the ",))),
        "choice_true_false": float(bool(all_choice_words & TRUE_FALSE_WORDS)),
        "choice_opposites": float(
            bool(all_choice_words & INCREASE_WORDS) and bool(all_choice_words & DECREASE_WORDS)
        ),
        "question_choice_overlap": _mean([jaccard(words, s) for s in word_sets]),
        "negation_upper": float(_found(NEGATION_UPPER, question, NEGATION_UPPER_WORDS)),
        "negation": float(bool(words & NEGATION_WORDS)),
        "statement_pair": float("Statement 1" in question),
        "roman_list": float(" II" in prompt and bool(re.search(r"\bII\b", prompt))),
        "which_of_following": float("which of the following" in lower),
        "question_mark": float(question.rstrip().endswith("?")),
        "blank": float("_" in question),
        "digits_log": math.log1p(len(DIGIT.findall(question))),
        "numbers_log": math.log1p(len(NUMBER.findall(question))),
        "operators_log": math.log1p(sum(question.count(op) for op in "=+*/^<>")),
        "capitalised_log": math.log1p(len(CAPITALISED.findall(question))),
        "years_log": math.log1p(len(YEAR.findall(question))),
        "quotes": float('"' in question or "\u201c" in question),
        "word_length_mean": _mean(raw_lengths),
        "long_words_share": _share(length >= 10 for length in raw_lengths),
        "compression_ratio": len(zlib.compress(question.encode())) / (len(question) + 1),
        "person": float(bool(words & PERSON_WORDS)),
        "scenario": float(bool(words & SCENARIO_WORDS)),
        "calculate": float(
            bool(words & CALCULATE_WORDS) or any(p in lower for p in CALCULATE_PHRASES)
        ),
        "definition": float(any(phrase in lower for phrase in DEFINITION_PHRASES)),
        "superlative": float(bool(words & SUPERLATIVE_WORDS)),
        "symbols_log": math.log1p(len(SYMBOLS.findall(prompt))),
        "code": float(_found(CODE, prompt, CODE_LITERALS)),
        "step_cues_log": math.log1p(_tally(word_counts, STEP_WORDS)),
        "percent": float(_found(PERCENT, lower, ("%", "percent"))),
        "fraction_words_log": math.log1p(_tally(word_counts, FRACTION_WORDS)),
        "money": float(_found(MONEY, question, ("$",))),
        "time_units_log": math.log1p(_tally(word_counts, TIME_WORDS)),
        "sentences_log": math.log1p(len(SENTENCE_END.findall(question))),
        **computation_features(prompt),
    }


# ---------------------------------------------------------------------------------------
# The weak model's answer (cascade mode)

_FINAL_HASH = re.compile(r"####\s*\$?\s*(-?[\d,]*\.?\d+)")
_FINAL_PHRASE = re.compile(
    r"(?:the answer is|answer:|final answer|therefore|so,? the|in total|total of)\D{0,40}"
    r"(-?\$?[\d,]*\.?\d+)",
    re.IGNORECASE,
)
_HEDGE = re.compile(
    r"\b(maybe|perhaps|might|possibly|approximately|assume|assuming|unclear|not sure|"
    r"it seems|i think|cannot be determined|not enough information|ambiguous)\b",
    re.IGNORECASE,
)
_CORRECTION = re.compile(
    r"\b(wait|actually|mistake|correction|let me re|let's re|recalculate|re-evaluate|"
    r"however|instead|oops|i made an error|that's not right)\b",
    re.IGNORECASE,
)
_NUMBER_TOKEN = re.compile(r"\d+(?:\.\d+)?")


def answer_features(response: str | None) -> dict[str, float]:
    """Signals that the weak model's answer is wrong; all zero (and `has_answer` 0) if None."""
    if response is None:
        response = ""
    text = response.strip()
    checked, wrong = arithmetic_checks(text)
    final_hash = _FINAL_HASH.search(text)
    final_phrase = _FINAL_PHRASE.findall(text)
    numbers = _NUMBER_TOKEN.findall(text)
    last_line = text.rsplit("\n", 1)[-1] if text else ""
    ends_cleanly = text.endswith((".", "!", ")", "]")) or bool(final_hash)
    distinct_final = len({n.replace(",", "").lstrip("$") for n in final_phrase})
    return {
        "answer_present": float(bool(text)),
        "answer_chars_log": math.log1p(len(text)),
        "answer_lines_log": math.log1p(text.count("\n")),
        "answer_final_marker": float(bool(final_hash)),
        "answer_final_phrase": float(bool(final_phrase)),
        "answer_final_candidates": float(distinct_final),
        "answer_truncated": float(bool(text) and not ends_cleanly),
        "answer_unfinished_annotation": float(text.count("<<") > text.count(">>")),
        "answer_hedges_log": math.log1p(len(_HEDGE.findall(text))),
        "answer_corrections_log": math.log1p(len(_CORRECTION.findall(text))),
        "answer_arithmetic_checked_log": math.log1p(checked),
        "answer_arithmetic_wrong": float(wrong),
        "answer_arithmetic_wrong_any": float(wrong > 0),
        "answer_numbers_log": math.log1p(len(numbers)),
        "answer_last_line_has_number": float(bool(_NUMBER_TOKEN.search(last_line))),
        "answer_ends_question": float(text.endswith("?")),
        "answer_decimal_final": float(bool(final_hash) and "." in final_hash.group(1)),
        "answer_negative_final": float(bool(final_hash) and final_hash.group(1).startswith("-")),
    }
