"""The prompt's text as the routing features read it: the multiple-choice split, the
bounded window, and the word lists and patterns (shared by every feature set)."""

from __future__ import annotations

import re

WINDOW_CHARS = 256

_CHOICE = re.compile(r"^\(?([A-J])[.):]\s?(.*)$")
WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
NEGATION_UPPER_WORDS = ("NOT", "EXCEPT", "LEAST", "FALSE", "INCORRECT", "NEVER")
NEGATION_UPPER = re.compile(rf"\b({'|'.join(NEGATION_UPPER_WORDS)})\b")
NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
DIGIT = re.compile(r"\d")
# Several patterns start with the character they need, and check the word boundary before
# it with a look-behind after it: the same matches as a leading \b or look-behind, but the
# regex engine then skips ahead to candidate characters instead of trying every position.
CAPITALISED = re.compile(r"[A-Z](?<!\w[A-Z])[a-z]+")  # \b[A-Z][a-z]+
YEAR = re.compile(r"[12](?<!\w[12])(?:(?<=1)[5-9]\d\d|(?<=2)0\d\d)\b")  # 1500-2099
ALL_ABOVE = re.compile(r"\b(all|none|both|neither) of the (above|these|following)\b")
ROMAN = re.compile(r"\b(I|II|III|IV)\b")
CALCULATE_PHRASES = ("what is the value", "how many", "how much")
DEFINITION_PHRASES = ("is called", "refers to", "is defined", "is known as", "term for")
SYMBOLS = re.compile(r"[\\{}\[\]|∈∀∃→↔∧∨¬≡⊃~]")
CODE_LITERALS = ("def ", "return ", "int", ";", "()", "==")  # one of them is in every match
CODE = re.compile(r"(def |return |\bint\b|;\s*$|\(\)|==)", re.MULTILINE)
PERCENT = re.compile(r"%|\bpercent\b")
MONEY = re.compile(r"\$\s?\d")
SENTENCE_END = re.compile(r"[.?!](?:\s|$)")

# Computation load and problem structure, over the whole prompt (feature set 2): what a
# weaker model gets wrong in word problems and quantitative questions.
# -?$?digits, not after a word character or a dot.
QUANTITY = re.compile(r"(?:-(?<![\w.]-)\$?\d|\$(?<![\w.]\$)\d|\d(?<![\w.]\d))[\d,]*(?:\.\d+)?%?")
FRACTION = re.compile(r"\b\d+\s*/\s*\d+\b")
DECIMAL = re.compile(r"\d\.\d")
TOKEN = re.compile(r"[a-z]+")
# Word lists matched by set membership over the lower-cased tokens (one pass; regular
# expressions with long alternations cost ~50 us each on a GSM8K problem).
NUMBER_WORDS = frozenset(
    [
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "fifteen",
        "twenty",
        "thirty",
        "forty",
        "fifty",
        "hundred",
        "thousand",
        "million",
        "dozen",
        "half",
        "twice",
        "thrice",
        "double",
        "triple",
        "quarter",
        "third",
        "fourth",
        "fifth",
    ]
)
COMPARISON_WORDS = frozenset(["more", "less", "fewer", "than"])
COMPARISON_PHRASES = ("times as", "as many", "as much")
RATE_WORDS = frozenset(["per", "each", "every", "rate", "speed", "mph", "km"])
RATE_PHRASES = ("an hour", "a day", "a week", "a month", "a year")
REMAINDER_WORDS = frozenset(
    ["left", "remaining", "remains", "rest", "spent", "lost", "sold", "ate", "used"]
)
TIME_WORDS = frozenset(
    [
        "hour",
        "hours",
        "minute",
        "minutes",
        "day",
        "days",
        "week",
        "weeks",
        "month",
        "months",
        "year",
        "years",
    ]
)
UNIT_OF = {
    word: word.rstrip("s")
    for word in [
        "dollar",
        "dollars",
        "cent",
        "cents",
        "second",
        "seconds",
        *sorted(TIME_WORDS),
        "mile",
        "miles",
        "feet",
        "foot",
        "inch",
        "inches",
        "pound",
        "pounds",
        "ounce",
        "ounces",
        "kg",
        "gram",
        "grams",
        "liter",
        "liters",
        "gallon",
        "gallons",
        "meter",
        "meters",
        "cup",
        "cups",
    ]
}
UNIT_OF["inches"] = "inch"
CONDITIONAL_WORDS = frozenset(["if", "unless", "assuming", "suppose", "when"])
EQUATION_WORDS = frozenset({"x", "y", "sqrt"})
# A capitalised word, not first in the text or after a sentence's end.
NAME = re.compile(r"[A-Z](?<![.!?]\s[A-Z])(?<!^[A-Z])(?<!\w[A-Z])[a-z]{2,}")
FORMULA = re.compile(r"[A-Z](?<!\w[A-Z])[a-z]?\d*(?:[A-Z][a-z]?\d*)+\b")  # NaCl, H2SO4
ROMAN_COMBINATION = re.compile(r"I(?<!\wI)(?:I{0,2}|V)(?:,|\s+and)\s+(?:I{1,3}|IV)\b")
# A sentence break: the whitespace after a full stop, question or exclamation mark.
SENTENCE_BREAK = re.compile(r"[.?!](\s+)")

# Word lists, matched by set intersection over the lower-cased words (fast on long prompts).
NEGATION_WORDS = frozenset(["not", "except", "n't", "never", "least", "false", "incorrect"])
NEGATION_WORDS |= frozenset({"isn't", "doesn't", "don't", "cannot", "can't", "wasn't"})
TRUE_FALSE_WORDS = frozenset({"true", "false"})
PERSON_WORDS = frozenset(
    ["he", "she", "his", "her", "man", "woman", "defendant", "plaintiff", "patient"]
)
SCENARIO_WORDS = frozenset(["suppose", "assume", "consider", "if", "when"])
CALCULATE_WORDS = frozenset(["calculate", "compute", "probability", "solve", "find"])
SUPERLATIVE_WORDS = frozenset(
    ["best", "most", "primary", "main", "likely", "strongest", "greatest"]
)
INCREASE_WORDS = frozenset(
    ["increase", "increases", "rise", "rises", "higher", "more", "positive", "up"]
)
DECREASE_WORDS = frozenset(
    ["decrease", "decreases", "fall", "falls", "lower", "less", "negative", "down"]
)
STEP_WORDS = frozenset(
    ["then", "after", "before", "each", "every", "per", "twice", "half", "remaining", "left"]
)
FRACTION_WORDS = frozenset(
    ["half", "third", "quarter", "fifth", "twice", "thrice", "double", "triple"]
)


def split_multiple_choice(prompt: str) -> tuple[str, list[str]]:
    """(question, choices) of an MMLU-style prompt ("A. ..." lines, then "Answer:")."""
    lines = prompt.rstrip().split("\n")
    if lines and lines[-1].strip().lower().startswith("answer"):
        lines = lines[:-1]
    choices: list[str] = []
    while lines:
        match = _CHOICE.match(lines[-1].strip())
        if not match:
            break
        choices.append(match.group(2))
        lines.pop()
    if len(choices) < 2:
        return prompt, []
    choices.reverse()
    return "\n".join(lines), choices


def jaccard(first: set, second: set) -> float:
    common = len(first & second)
    union = len(first) + len(second) - common
    return common / union if union else 0.0


def trigrams(text: str) -> set[tuple[str, ...]]:
    """The text's character trigrams (whitespace runs as one space), as tuples of three
    characters (zip runs in C; a set of them has the sizes the set of 3-character strings
    has, which is all the similarity reads). A text under 3 characters is one "trigram"."""
    text = " ".join(text.split())
    if len(text) < 3:
        return {(text,)}
    return set(zip(text, text[1:], text[2:], strict=False))


LARGEST_QUANTITY = 1e300  # a number of 309+ digits is infinite as a float: read as this


def quantity_value(token: str) -> float | None:
    try:
        value = abs(float(token.replace(",", "").replace("$", "").replace("%", "")))
    except ValueError:
        return None
    return min(value, LARGEST_QUANTITY)


def window(text: str, size: int = WINDOW_CHARS, joiner: str = "\n") -> str:
    """`text` itself, or when longer than 2 x `size` its first and last `size` characters
    joined by `joiner` (a line break)."""
    if len(text) <= 2 * size:
        return text
    return f"{text[:size]}{joiner}{text[-size:]}"
