"""Complexity classification: text + task type -> simple | medium | complex, with reasons.

A transparent additive score in [0, 1], so every decision can be explained:

    score = task base  +  length  +  structure  +  vocabulary signals   (clamped to [0, 1])

- **task base**: how hard the task type usually is (classification is easy, reasoning hard).
- **length**: longer prompts carry more context to hold; log-scaled, capped at +0.30.
- **structure**: code blocks, several questions, numbered requirements, math notation.
- **vocabulary**: words that ask for deep work ("prove", "trade-offs", "step by step")
  raise the score; words that ask for a short answer ("yes or no", "one word") lower it.

Deterministic (no randomness, no model), and fast: one word-set intersection, a few
substring tests and two small regular expressions over at most the first `SCAN_CHARS`
characters (the length term uses the full length).
Thresholds: score < 0.35 simple, < 0.65 medium, else complex.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

TASK_TYPES = (
    "classification",
    "extraction",
    "summarization",
    "creative",
    "analysis",
    "code",
    "reasoning",
)
COMPLEXITIES = ("simple", "medium", "complex")

TASK_BASE = {
    "classification": 0.05,
    "extraction": 0.08,
    "summarization": 0.15,
    "creative": 0.22,
    "analysis": 0.25,
    "code": 0.30,
    "reasoning": 0.35,
}
SIMPLE_BELOW = 0.35
COMPLEX_FROM = 0.65
SCAN_CHARS = 3000

# Vocabulary that asks for deep work. Whole words, matched with one set intersection over
# the prompt's lower-cased words (regex alternations were ~10x slower on long prompts).
_DEEP_WORD_LIST = """
    prove proof proofs derive derivation tradeoff tradeoffs trade-off trade-offs architect
    architecture architectural optimize optimise optimized optimised optimizing optimising
    optimization optimisation optimal comprehensive rigorous rigorously critique evaluate
    compare contrast justify multi-step concurrency concurrent distributed algorithm
    algorithms algorithmic complexity refactor refactoring debug debugging strategy strategic
    implication implications hypothesis hypotheses theorem integral probability nuance
    nuanced in-depth step-by-step
"""
_DEEP_WORDS = frozenset(word.encode() for word in _DEEP_WORD_LIST.split())
_DEEP_PHRASES = ("step by step", "in depth", "edge case", "trade off", "multi step")
_SHORT_PHRASES = (
    "yes or no",
    "one word",
    "single word",
    "true or false",
    "briefly",
    "in one sentence",
    "which category",
    "sentiment",
    "extract the",
    "list the",
    "translate",
)
_CODE_MARKERS = ("```", "def ", "class ", "function ", "=>", "#include", "select ", "{\n")
_MATH_MARKERS = ("\\frac", "\\sum", "∑", "∫", "√")
_MATH = re.compile(r"\d ?[-+*/^=<>] ?\d")
_ENUMERATED = re.compile(r"(?m)^[ \t]*(?:\d+[.)]|[-*•])[ \t]+")
# Punctuation to spaces (hyphens stay inside words) so that bytes.split() yields words;
# working on ASCII bytes keeps the whole tokenisation in C.
_PUNCTUATION = b"\"'`.,;:!?()[]{}<>/\\|=+*&^%$#@~_"
_TO_SPACES = bytes.maketrans(_PUNCTUATION, b" " * len(_PUNCTUATION))


@dataclass(frozen=True, slots=True)
class Classification:
    complexity: str
    score: float
    task_type: str
    reasons: tuple[str, ...]


def _length_term(n_chars: int) -> float:
    # ~0 for a one-line prompt, ~0.10 at 400 chars, ~0.20 at 2,000, capped at 0.30 (~10k).
    if n_chars <= 80:
        return 0.0
    return min(0.30, 0.1 * math.log2(n_chars / 80) / 2.3)


def classify(text: str, task_type: str = "analysis") -> Classification:
    """Classify one prompt. Unknown task types are treated as "analysis" and say so."""
    reasons: list[str] = []
    base = TASK_BASE.get(task_type)
    if base is None:
        reasons.append(f"unknown task type {task_type!r} treated as analysis (+0.25)")
        base = TASK_BASE["analysis"]
        task_type = "analysis"
    else:
        reasons.append(f"task type {task_type} (+{base:.2f})")
    score = base

    n_chars = len(text)
    length = _length_term(n_chars)
    if length >= 0.01:
        reasons.append(f"{n_chars} characters (+{length:.2f})")
        score += length

    sample = text if n_chars <= SCAN_CHARS else text[:SCAN_CHARS]
    lower = sample.lower()
    words = set(lower.encode("ascii", "ignore").translate(_TO_SPACES).split())

    deep = {word.decode() for word in words & _DEEP_WORDS}
    deep.update(phrase for phrase in _DEEP_PHRASES if phrase in lower)
    if deep:
        bonus = min(0.30, 0.10 * len(deep))
        shown = ", ".join(sorted(deep)[:4])
        reasons.append(f"asks for deep work ({shown}) (+{bonus:.2f})")
        score += bonus

    if any(marker in lower for marker in _CODE_MARKERS):
        reasons.append("contains code (+0.10)")
        score += 0.10
    if any(marker in sample for marker in _MATH_MARKERS) or _MATH.search(sample):
        reasons.append("contains math (+0.08)")
        score += 0.08

    questions = sample.count("?")
    if questions >= 2:
        bonus = min(0.12, 0.04 * (questions - 1))
        reasons.append(f"{questions} questions (+{bonus:.2f})")
        score += bonus

    if "\n" in sample:
        items = len(_ENUMERATED.findall(sample))
        if items >= 3:
            bonus = min(0.10, 0.02 * items)
            reasons.append(f"{items} enumerated requirements (+{bonus:.2f})")
            score += bonus

    if any(phrase in lower for phrase in _SHORT_PHRASES):
        reasons.append("asks for a short answer (-0.10)")
        score -= 0.10

    score = min(1.0, max(0.0, score))
    if score < SIMPLE_BELOW:
        complexity = "simple"
    elif score < COMPLEX_FROM:
        complexity = "medium"
    else:
        complexity = "complex"
    return Classification(
        complexity=complexity, score=round(score, 4), task_type=task_type, reasons=tuple(reasons)
    )
