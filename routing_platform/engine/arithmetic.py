"""Re-computing the arithmetic an answer writes: ``15 + 25 = 45`` is wrong.

A model's worked answer betrays a mistake when one of its own steps does not add up. Both
the engine's confidence heuristics (an answer with a wrong step escalates) and the learned
router's cascade features read it. Expressions are parsed (+ - * / and parentheses over
exact fractions); nothing in the text is executed.
"""

from __future__ import annotations

import re
from fractions import Fraction

_ANNOTATION = re.compile(r"<<([^<>=]+)=([^<>]+)>>")
_ARITHMETIC = re.compile(
    r"((?:\(?\s*-?\$?\d[\d,]*(?:\.\d+)?%?\s*\)?\s*[-+*/x×÷]\s*)+\(?\s*-?\$?\d[\d,]*(?:\.\d+)?%?\s*\)?)"
    r"\s*=\s*\$?\s*(-?\d[\d,]*(?:\.\d+)?)"
)
_SAFE_EXPRESSION = re.compile(r"^[\d\s.+\-*/()]+$")


def _evaluate(expression: str, *, percent_as_fraction: bool = False) -> float | None:
    """The value of a small arithmetic expression, or None (a parser: nothing is eval()ed)."""
    expression = (
        expression.replace(",", "")
        .replace("$", "")
        .replace("x", "*")
        .replace("×", "*")
        .replace("÷", "/")
        .replace("%", "/100" if percent_as_fraction else "")
    )
    if not _SAFE_EXPRESSION.match(expression) or len(expression) > 120:
        return None
    if "**" in expression:
        return None
    try:
        tokens = re.findall(r"\d+(?:\.\d+)?|[-+*/()]", expression)
        return float(_Parser(tokens).parse())
    except (ValueError, ZeroDivisionError, IndexError, OverflowError):
        return None


class _Parser:
    """Recursive-descent parser for + - * / and parentheses over exact fractions."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.position = 0

    def parse(self) -> Fraction:
        value = self._sum()
        if self.position != len(self.tokens):
            raise ValueError("trailing tokens")
        return value

    def _peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _sum(self) -> Fraction:
        value = self._product()
        while self._peek() in ("+", "-"):
            operator = self.tokens[self.position]
            self.position += 1
            right = self._product()
            value = value + right if operator == "+" else value - right
        return value

    def _product(self) -> Fraction:
        value = self._unary()
        while self._peek() in ("*", "/"):
            operator = self.tokens[self.position]
            self.position += 1
            right = self._unary()
            value = value * right if operator == "*" else value / right
        return value

    def _unary(self) -> Fraction:
        if self._peek() == "-":
            self.position += 1
            return -self._unary()
        if self._peek() == "(":
            self.position += 1
            value = self._sum()
            if self._peek() != ")":
                raise ValueError("unbalanced parenthesis")
            self.position += 1
            return value
        token = self._peek()
        if token is None:
            raise ValueError("unexpected end")
        self.position += 1
        return Fraction(token)


def _close(claimed: float, actual: float) -> bool:
    return abs(claimed - actual) <= max(0.011, 0.005 * abs(actual))


def _to_float(text: str) -> float | None:
    try:
        return float(text.replace(",", "").replace("$", ""))
    except ValueError:
        return None


def arithmetic_checks(response: str) -> tuple[int, int]:
    """(checked, wrong): equations written in the answer whose result was recomputed."""
    checked = wrong = 0
    for left, right in _ANNOTATION.findall(response):
        actual = _evaluate(left)
        claimed = _to_float(right.strip())
        if actual is None or claimed is None:
            continue
        checked += 1
        wrong += not _close(claimed, actual)
    plain = _ANNOTATION.sub("", response)
    for left, right in _ARITHMETIC.findall(plain):
        actual = _evaluate(left)
        claimed = _to_float(right)
        if actual is None or claimed is None:
            continue
        # "12 / 20 x 100 = 55%" is wrong; "8 x $5 x 60% = 24" is right: a percentage may
        # be written as a number or as a fraction, so either reading can make it right.
        as_fraction = _evaluate(left, percent_as_fraction=True) if "%" in left else None
        checked += 1
        wrong += not (
            _close(claimed, actual) or (as_fraction is not None and _close(claimed, as_fraction))
        )
    return checked, wrong
