"""Prompt embeddings from WordLlama (the `wordllama` package), loaded offline, once per process.

The wheel ships its weights (``weights/l2_supercat_256.safetensors``: a 32,000 x 256 token
embedding matrix) and its tokenizer (``tokenizers/``); pointing `cache_dir` at the package
directory finds both, and ``disable_download=True`` makes a missing file an error instead
of a download. Nothing here ever touches the network.

A prompt's embedding is WordLlama's ``embed(text, norm=True)``: the mean of its tokens'
vectors, scaled to unit length. Computed here directly from the matrix, with the same
numpy operations (so the numbers are identical; a test checks it), because the library
call costs ~0.3 ms on a 2,000-character prompt, most of it in the tokenizer. The tokenizer
is a Llama-2 BPE with no pre-tokenizer, and none of its 32,000 tokens has a word boundary
("▁") after another character, so a prompt's tokens are the concatenation of the tokens of
its words (a run of "▁" and the characters up to the next one); each word's tokens are
cached, and a decision on a prompt of known words is a dict look-up per word.
"""

from __future__ import annotations

import importlib.metadata
import re
import threading
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np

from routing_platform.engine.quality.prompt_text import window

EMBEDDING_PACKAGE = "wordllama"
EMBEDDING_CONFIG = "l2_supercat"
EMBEDDING_DIM = 256
EMBEDDING_NAME = f"{EMBEDDING_PACKAGE}/{EMBEDDING_CONFIG}_{EMBEDDING_DIM}"
# Words whose tokens are remembered (a bound, so a stream of unique strings cannot grow the
# process without limit: past it the cache starts over).
WORD_CACHE_SIZE = 200_000
# Routers of feature set 4 on embed the prompt's first and last this many characters (the
# embedding's cost then stops growing with the prompt, as the features' does).
EMBEDDING_WINDOW_CHARS = 128
WINDOWED_FROM_FEATURE_SET = 4

_BOUNDARY = "\u2581"  # SentencePiece's word boundary "▁"
_WORD = re.compile(f"{_BOUNDARY}*[^{_BOUNDARY}]+|{_BOUNDARY}+")


def embedding_input(prompt: str, feature_version: int) -> str:
    """What a router of `feature_version` embeds: the prompt, or (set 4 on) its window."""
    if feature_version >= WINDOWED_FROM_FEATURE_SET:
        return window(prompt, EMBEDDING_WINDOW_CHARS)
    return prompt


class EmbeddingError(RuntimeError):
    """The embedding cannot be loaded (package missing or its files not in the wheel)."""


@dataclass(frozen=True)
class EmbeddingInfo:
    """What a router artifact records about the embedding it was trained with."""

    name: str
    version: str
    dim: int

    def as_dict(self) -> dict:
        return {"name": self.name, "version": self.version, "dim": self.dim}


def installed_info() -> EmbeddingInfo:
    """The installed embedding's name and version (read from package metadata, no import)."""
    try:
        version = importlib.metadata.version(EMBEDDING_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        version = "not installed"
    return EmbeddingInfo(EMBEDDING_NAME, version, EMBEDDING_DIM)


class PromptEmbedder:
    """Unit-length mean-pooled WordLlama embeddings of prompts (float32, `dim` wide)."""

    def __init__(self, matrix: np.ndarray, bpe_model, info: EmbeddingInfo) -> None:
        self.matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        self.info = info
        self._bpe = bpe_model
        self._words: dict[str, list[int]] = {}

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    def token_ids(self, text: str) -> list[int]:
        """The tokenizer's ids for `text` (no special tokens), word by cached word."""
        if not text:
            return []
        normalised = _BOUNDARY + text.replace(" ", _BOUNDARY)
        words = self._words
        if len(words) > WORD_CACHE_SIZE:
            words.clear()
        found = _WORD.findall(normalised)
        tokens = list(map(words.get, found))  # a look-up per word, in C
        if None in tokens:
            for index, word in enumerate(found):
                if tokens[index] is None:
                    tokens[index] = words[word] = [token.id for token in self._bpe.tokenize(word)]
        return list(chain.from_iterable(tokens))

    def embed(self, text: str) -> np.ndarray:
        """WordLlama's ``embed(text, norm=True)[0]``; all zeros for an empty prompt."""
        ids = self.token_ids(text)
        if not ids:
            return np.zeros(self.dim, dtype=np.float32)
        # WordLlama's own operations, in its order (a batch of one), so the float32 rounding
        # is the same: sum of the token rows / token count, then the row's norm. Its mask is
        # all ones for one prompt (multiplying by 1.0 is exact), so it is left out, and the
        # rows are summed one after another either way.
        pooled = self.matrix[ids].sum(axis=0, keepdims=True, dtype=np.float32)
        pooled /= np.float32(len(ids))
        pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled[0]

    def embed_prompts(self, prompts, feature_version: int) -> np.ndarray:
        """One row per prompt, embedding what a router of `feature_version` reads of it."""
        return self.embed_many([embedding_input(prompt, feature_version) for prompt in prompts])

    def embed_many(self, texts) -> np.ndarray:
        """One row per text."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row] = self.embed(text)
        return out


_lock = threading.Lock()
_embedder: PromptEmbedder | None = None


def load_wordllama():
    """WordLlama's own model object, from the files inside the installed wheel only."""
    try:
        # Imported on first use: it brings the tokenizers library (~1.5 s), which a router
        # without embeddings, and `manage.py routing --help`, never need.
        import wordllama
        from wordllama import WordLlama
    except ImportError as err:
        raise EmbeddingError(
            f"the {EMBEDDING_PACKAGE!r} package is not installed ({err}); install the "
            "project's dependencies (make install)"
        ) from err
    try:
        return WordLlama.load(
            EMBEDDING_CONFIG,
            cache_dir=Path(wordllama.__file__).parent,
            dim=EMBEDDING_DIM,
            disable_download=True,
        )
    except (FileNotFoundError, OSError, ValueError) as err:
        raise EmbeddingError(
            f"cannot load {EMBEDDING_NAME} from the installed package: {err}"
        ) from err


def get_embedder() -> PromptEmbedder:
    """The process's embedder, loaded on first use (thread-safe)."""
    global _embedder
    with _lock:
        if _embedder is None:
            model = load_wordllama()
            _embedder = PromptEmbedder(model.embedding, model.tokenizer.model, installed_info())
        return _embedder
