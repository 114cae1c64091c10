"""WordLlama prompt embeddings: loaded offline from the wheel, identical to the library's."""

from __future__ import annotations

import numpy as np
import pytest
import wordllama

from routing_platform.engine.quality.embedding import (
    EMBEDDING_NAME,
    get_embedder,
    installed_info,
    load_wordllama,
)
from tests.engine.quality.conftest import synthetic_rows

PROMPTS = [
    "What is 2 + 2?",
    "  leading and  double   spaces, trailing space ",
    "Line one\nLine two\n\n\tindented\tcode()",
    "Unicode: café, naïve, Straße, 東京, emoji 🚀, math ∑∫√ and ▁ itself",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "x" * 3000,
    "word " * 400,
    *[row["prompt"] for row in synthetic_rows(30)],
]


@pytest.fixture(scope="module")
def library():
    return load_wordllama()


def test_token_ids_match_the_library_tokenizer(library):
    """Word-by-word cached tokenisation gives exactly the tokenizer's ids."""
    embedder = get_embedder()
    for prompt in PROMPTS:
        expected = library.tokenizer.encode(prompt, add_special_tokens=False).ids
        assert embedder.token_ids(prompt) == expected, prompt[:40]


def test_embeddings_are_identical_to_wordllama_embed(library):
    """The numpy path returns WordLlama's embed(text, norm=True), bit for bit."""
    embedder = get_embedder()
    for prompt in PROMPTS:
        expected = library.embed(prompt, norm=True)[0]
        np.testing.assert_array_equal(embedder.embed(prompt), expected)
    many = embedder.embed_many(PROMPTS[:5])
    np.testing.assert_array_equal(many, library.embed(PROMPTS[:5], norm=True, batch_size=1))


def test_embeddings_are_unit_length_and_empty_is_zero():
    """Every non-empty prompt is a unit vector; an empty prompt is all zeros (no NaN)."""
    embedder = get_embedder()
    assert np.linalg.norm(embedder.embed("hello world")) == pytest.approx(1.0, abs=1e-6)
    assert not embedder.embed("").any()
    assert embedder.dim == 256


def test_installed_info_names_the_package_version():
    """The artifact records the embedding's name and the installed wordllama version."""
    info = installed_info()
    assert info.name == EMBEDDING_NAME == "wordllama/l2_supercat_256"
    assert info.version == wordllama.__version__
    assert get_embedder() is get_embedder()  # loaded once per process
