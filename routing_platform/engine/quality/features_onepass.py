"""Feature set 4: the prompt's structure read in one pass over a bounded window.

Feature set 3 reads ~25 regular expressions over the question and again over the whole
prompt: ~0.3 ms on a 1,000-character multiple-choice prompt, more than the whole routing
decision's budget (p99 <= 0.2 ms). Set 4 keeps what carries signal and computes it from
the question's window (its first and last 256 characters) and each choice's first and
last 32 characters:

- one ASCII word split (in C), looked up once against every word list;
- one scan for quantities (numbers, money, percentages), from which the decimals, years
  and largest value follow;
- character counts (`str.count`, in C) for digits, operators and symbols;
- the choices' lengths, and their word and character-trigram similarity.

Flags that carried no signal in training (no tree split on them, near-zero weights:
upper-case negation, roman-numeral lists, "all of the above", quotes, code) are left out.
Lengths (characters, words, lines) are those of the whole prompt, as in set 3.
"""

from __future__ import annotations

import math
import os
import zlib
from collections import Counter
from math import log1p

from routing_platform.engine.quality import prompt_text

# Word vocabularies of feature set 3, each becoming one count (a word may be in several).
_VOCABULARIES = {
    "negation": prompt_text.NEGATION_WORDS,
    "person": prompt_text.PERSON_WORDS,
    "scenario": prompt_text.SCENARIO_WORDS,
    "calculate": prompt_text.CALCULATE_WORDS,
    "superlative": prompt_text.SUPERLATIVE_WORDS,
    "step_cues": prompt_text.STEP_WORDS,
    "fraction_words": prompt_text.FRACTION_WORDS,
    "time_units": prompt_text.TIME_WORDS,
    "number_words": prompt_text.NUMBER_WORDS,
    "comparisons": prompt_text.COMPARISON_WORDS,
    "rates": prompt_text.RATE_WORDS,
    "remainders": prompt_text.REMAINDER_WORDS,
    "conditionals": prompt_text.CONDITIONAL_WORDS,
    "equations": prompt_text.EQUATION_WORDS,
}
_GROUPS = tuple(_VOCABULARIES)
_GROUP_NAMES = tuple(f"{name}_log" for name in _GROUPS)
# word -> the indices of the vocabularies it belongs to (one dict look-up per word found).
# Words are ASCII bytes (see _words); words with an apostrophe are split at it.
_GROUPS_OF: dict[bytes, tuple[int, ...]] = {}
for _index, _name in enumerate(_GROUPS):
    for _word in _VOCABULARIES[_name]:
        _key = _word.encode()
        _GROUPS_OF[_key] = (*_GROUPS_OF.get(_key, ()), _index)
_UNIT_OF = {word.encode(): unit for word, unit in prompt_text.UNIT_OF.items()}
_KNOWN = frozenset(_GROUPS_OF) | frozenset(_UNIT_OF)
_PHRASES = tuple(
    (_GROUPS.index(name), phrases)
    for name, phrases in (
        ("comparisons", prompt_text.COMPARISON_PHRASES),
        ("rates", prompt_text.RATE_PHRASES),
        ("remainders", ("gave away",)),
        ("conditionals", ("given that",)),
    )
)
_PUNCTUATION = b"\"'`.,;:!?()[]{}<>/\\|=+*&^%$#@~_"
_TO_SPACES = bytes.maketrans(_PUNCTUATION, b" " * len(_PUNCTUATION))
_SYMBOLS = "\\{}[]|∈∀∃→↔∧∨¬≡⊃~"
_CHOICE_CHARS = 32  # the choices are read on their first and last 32 characters
_NOT_NUMERIC = str.maketrans("", "", ",$%")  # a quantity without them is a float literal


def _ascii(words: frozenset[str]) -> frozenset[bytes]:
    return frozenset(word.encode() for word in words)


_NEGATION_WORDS = _ascii(prompt_text.NEGATION_WORDS)
_INCREASE_WORDS = _ascii(prompt_text.INCREASE_WORDS)
_DECREASE_WORDS = _ascii(prompt_text.DECREASE_WORDS)
_OPERATORS = "=+*/^<>"
_DIGITS = "0123456789"


def _words(lower: str) -> list[bytes]:
    """The text's ASCII words: punctuation to spaces, then split, all in C."""
    return lower.encode("ascii", "ignore").translate(_TO_SPACES).split()


def _word_groups(words: list[bytes], lower: str) -> tuple[list[int], int]:
    """Per vocabulary, how many of the words are in it (and its phrases in `lower`); how
    many distinct units the words name."""
    tallies = [0] * len(_GROUPS)
    units = set()
    for word, count in Counter(filter(_KNOWN.__contains__, words)).items():
        for index in _GROUPS_OF.get(word, ()):
            tallies[index] += count
        unit = _UNIT_OF.get(word)
        if unit is not None:
            units.add(unit)
    for index, phrases in _PHRASES:
        tallies[index] += sum(map(lower.count, phrases))
    return tallies, len(units)


def _quantity_figures(text: str) -> tuple[dict[str, float], int]:
    """Figures of the text's quantities (numbers, money, percentages), and their count."""
    quantities = prompt_text.QUANTITY.findall(text)
    values = [abs(float(token.translate(_NOT_NUMERIC))) for token in set(quantities)]
    years = sum(1 for value in values if 1500 <= value < 2100 and value.is_integer())
    figures = {
        "quantities_log": log1p(len(quantities)),
        "quantities_distinct_log": log1p(len(values)),
        "quantity_max_log": log1p(min(max(values, default=0.0), prompt_text.LARGEST_QUANTITY)),
        "quantity_digits_log": log1p(sum(map(len, quantities))),
        "decimals_log": log1p(sum(1 for token in quantities if "." in token)),
        "years_log": log1p(years),
    }
    return figures, len(quantities)


def _final_sentence(text: str) -> str:
    end = max(text.rfind(". "), text.rfind("? "), text.rfind("! "), text.rfind(".\n"))
    return text[end + 2 :] if end >= 0 else text


def _choice_features(choices: list[str], question_words: set[bytes]) -> dict[str, float]:
    n = len(choices)
    if not n:
        return dict.fromkeys(_CHOICE_NAMES, 0.0)
    lengths = list(map(len, choices))
    clipped = list(map(_clip, choices))
    joined = "\n".join(clipped)
    lower = joined.lower()
    lowers = lower.split("\n")
    splits = list(map(_words, lowers))
    word_sets = list(map(set, splits))
    counts = list(map(len, splits))
    mean = sum(lengths) / n
    sims = _similarities(word_sets)
    gram_sims = _similarities(list(map(prompt_text.trigrams, lowers)))
    all_words = set().union(*word_sets)
    overlap = sum(prompt_text.jaccard(question_words, words) for words in word_sets)
    return {
        "choices_n": float(n),
        "choice_chars_mean_log": log1p(mean),
        "choice_chars_max_log": log1p(max(lengths)),
        "choice_chars_min_log": log1p(min(lengths)),
        "choice_chars_spread": math.sqrt(sum((x - mean) ** 2 for x in lengths) / n) / (mean + 1),
        "choice_longest_ratio": max(lengths) / (mean + 1),
        "choice_words_mean_log": log1p(sum(counts) / n),
        "choice_word_similarity": sum(sims) / len(sims),
        "choice_word_similarity_max": max(sims),
        "choice_gram_similarity": sum(gram_sims) / len(gram_sims),
        "choice_gram_similarity_min": min(gram_sims),
        "choice_gram_similarity_max": max(gram_sims),
        "choice_common_prefix": len(os.path.commonprefix(clipped)) / (mean + 1),
        "choice_negation": sum(map(bool, map(_NEGATION_WORDS.intersection, word_sets))) / n,
        "choice_single_word": sum(map((2).__gt__, counts)) / n,
        "choice_numeric": [c[:1].isdigit() for c in clipped].count(True) / n,
        "choice_opposites": float(
            not all_words.isdisjoint(_INCREASE_WORDS) and not all_words.isdisjoint(_DECREASE_WORDS)
        ),
        "question_choice_overlap": overlap / n,
    }


def _clip(choice: str) -> str:
    """The choice's window of `_CHOICE_CHARS` characters, joined by a space (the choices
    are then joined, and split again, by line breaks)."""
    return prompt_text.window(choice, _CHOICE_CHARS, " ")


def _similarities(sets: list[set]) -> list[float]:
    """The Jaccard similarity of every pair of the sets ([0.0] for fewer than two)."""
    return [
        prompt_text.jaccard(first, second)
        for i, first in enumerate(sets)
        for second in sets[i + 1 :]
    ] or [0.0]


_CHOICE_NAMES = tuple(_choice_features(["a", "b"], set()))


def prompt_features_onepass(prompt: str) -> dict[str, float]:
    """Feature set 4 of `prompt` (see the module's docstring); every value a finite float."""
    question, choices = prompt_text.split_multiple_choice(prompt)
    text = prompt_text.window(question)
    lower = text.lower()
    words = _words(lower)
    tallies, units = _word_groups(words, lower)
    raw_words = text.split()
    raw_lengths = list(map(len, raw_words))
    n_words = len(raw_lengths) or 1
    final = _final_sentence(text.rstrip())
    sentences = text.count(". ") + text.count("? ") + text.count("! ") + 1
    capitalised = prompt_text.CAPITALISED.findall(text)
    quantity_figures, n_quantities = _quantity_figures(text)
    final_quantities = (
        len(prompt_text.QUANTITY.findall(final)) if len(final) < len(text) else n_quantities
    )
    return {
        "prompt_chars_log": log1p(len(prompt)),
        "question_chars_log": log1p(len(question)),
        "question_words_log": log1p(len(raw_words if text is question else question.split())),
        "question_lines_log": log1p(question.count("\n")),
        **_choice_features(choices, set(words)),
        **dict(zip(_GROUP_NAMES, map(log1p, tallies), strict=True)),
        **quantity_figures,
        "units_distinct_log": log1p(units),
        "which_of_following": float("which of the following" in lower),
        "definition": float(any(map(lower.__contains__, prompt_text.DEFINITION_PHRASES))),
        "calculate_phrase": float(any(map(lower.__contains__, prompt_text.CALCULATE_PHRASES))),
        "question_mark": float(text.rstrip().endswith("?")),
        "question_marks": float(text.count("?")),
        "blank": float("_" in text),
        "percent": float("%" in text or "percent" in lower),
        "money": float("$" in text),
        "fractions": float("/" in text and bool(prompt_text.FRACTION.search(text))),
        "digits_log": log1p(sum(map(text.count, _DIGITS))),
        "operators_log": log1p(sum(map(text.count, _OPERATORS))),
        "symbols_log": log1p(sum(map(text.count, _SYMBOLS))),
        "capitalised_log": log1p(len(capitalised)),
        "capitalised_distinct_log": log1p(len(set(capitalised))),
        "word_length_mean": sum(raw_lengths) / n_words,
        "long_words_share": sum(map((9).__lt__, raw_lengths)) / n_words,
        "compression_ratio": len(zlib.compress(text.encode())) / (len(text) + 1),
        "sentences_log": log1p(sentences),
        "final_sentence_chars_log": log1p(len(final)),
        "final_sentence_quantities": float(final_quantities),
    }
