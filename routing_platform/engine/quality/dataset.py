"""Loading RouterBench-style wide CSV files of recorded model outcomes.

One row per prompt. Columns:

- ``prompt`` (required), ``eval_name`` (optional, defaults to the file's stem) and
  ``sample_id`` (optional, defaults to the first 16 hex of sha256(eval_name + "|" + prompt));
- one column per model holding that model's score on the row (0/1 correctness, or any
  number such as a 1-10 judge score);
- optionally ``<model>|model_response`` (the model's full answer) and
  ``<model>|total_cost`` (what the call cost, USD).

Any other known RouterBench bookkeeping column (``oracle_model_to_route_to``) is ignored.
Repeated prompts (and so repeated sample ids) are kept: the real files have a few. An
empty or NaN score means "not recorded": such rows are left out of comparisons that need
that model (and counted), instead of failing the whole file.
Malformed files raise :class:`DatasetError` naming the file, the row and the column.
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

RESPONSE_SUFFIX = "|model_response"
COST_SUFFIX = "|total_cost"
META_COLUMNS = frozenset({"sample_id", "eval_name", "prompt", "oracle_model_to_route_to"})


class DatasetError(ValueError):
    """A routing dataset that cannot be used; the message names the file, row and column."""


def sample_id_for(eval_name: str, prompt: str) -> str:
    """The RouteLLM/RouterBench-style id: first 16 hex of sha256(eval_name + "|" + prompt)."""
    return hashlib.sha256(f"{eval_name}|{prompt}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RoutingDataset:
    """Recorded outcomes of several models on the same prompts (columns as numpy arrays)."""

    sample_ids: tuple[str, ...]
    eval_names: tuple[str, ...]
    prompts: tuple[str, ...]
    scores: dict[str, np.ndarray]
    responses: dict[str, tuple[str, ...]] = field(default_factory=dict)
    costs_usd: dict[str, np.ndarray] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    # The engine task type of each row when known (recorded calls); else from eval_name.
    task_types: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(self.scores)

    def score(self, model: str) -> np.ndarray:
        """The model's per-row score column; a DatasetError listing the models if unknown."""
        try:
            return self.scores[model]
        except KeyError:
            raise DatasetError(
                f"model {model!r} is not a column of {self._describe_sources()}; "
                f"models found: {', '.join(self.models) or 'none'}"
            ) from None

    def response(self, model: str) -> tuple[str, ...] | None:
        """The model's full answers, or None when the file has no `<model>|model_response`."""
        return self.responses.get(model)

    def require_models(self, *models: str) -> None:
        for model in models:
            self.score(model)

    def with_outcomes(self, *models: str) -> tuple[RoutingDataset, int]:
        """The rows where every one of `models` has a recorded score, and how many were not."""
        self.require_models(*models)
        known = np.ones(len(self), dtype=bool)
        for model in models:
            known &= np.isfinite(self.scores[model])
        if known.all():
            return self, 0
        if not known.any():
            raise DatasetError(
                f"no row of {self._describe_sources()} has scores for all of {', '.join(models)}"
            )
        return self.subset(np.flatnonzero(known)), int((~known).sum())

    def subset(self, indices: Sequence[int] | np.ndarray) -> RoutingDataset:
        """The rows at `indices`, in that order."""
        index = np.asarray(indices, dtype=int)
        pick = index.tolist()
        return RoutingDataset(
            sample_ids=tuple(self.sample_ids[i] for i in pick),
            eval_names=tuple(self.eval_names[i] for i in pick),
            prompts=tuple(self.prompts[i] for i in pick),
            scores={name: column[index] for name, column in self.scores.items()},
            responses={
                name: tuple(column[i] for i in pick) for name, column in self.responses.items()
            },
            costs_usd={name: column[index] for name, column in self.costs_usd.items()},
            sources=self.sources,
            task_types=None if self.task_types is None else tuple(self.task_types[i] for i in pick),
        )

    def _describe_sources(self) -> str:
        return ", ".join(self.sources) if self.sources else "the dataset"


def _raise_field_size_limit() -> None:
    # Long model answers exceed csv's default 128 KiB field limit.
    limit = sys.maxsize
    while True:
        try:
            csv.field_size_limit(limit)
            return
        except OverflowError:
            limit //= 10


MISSING = frozenset({"", "nan", "na", "n/a", "null", "none"})


def _parse_number(text: str, *, path: Path, row: int, line: int, column: str) -> float:
    if text.lower() in MISSING:
        return math.nan  # no recorded outcome: the row is left out of that model's comparisons
    try:
        value = float(text)
    except ValueError:
        raise DatasetError(
            f"{path}: row {row} (line {line}), column {column!r}: {text[:40]!r} is not a number "
            "(expected the model's score, e.g. 1 for correct and 0 for wrong)"
        ) from None
    if math.isnan(value):
        return math.nan
    if not math.isfinite(value):
        raise DatasetError(
            f"{path}: row {row} (line {line}), column {column!r}: {text!r} is not a finite number"
        )
    return value


def load_dataset(path: str | Path, *, models: Iterable[str] | None = None) -> RoutingDataset:
    """Read one RouterBench-style CSV file.

    `models` restricts (and requires) the model columns to read; by default every column
    that is neither a known bookkeeping column nor a `<model>|...` column is a model column.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file (pass a RouterBench-style CSV file)")
    _raise_field_size_limit()
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return _read(handle, path, models=None if models is None else list(models))
    except UnicodeDecodeError as err:
        raise DatasetError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except csv.Error as err:
        raise DatasetError(f"{path}: not a readable CSV file ({err})") from None


def _read(handle, path: Path, *, models: list[str] | None) -> RoutingDataset:
    reader = csv.reader(handle)
    header = next(reader, None)
    if not header:
        raise DatasetError(f"{path}: empty file (expected a header row with a 'prompt' column)")
    header = [name.strip() for name in header]
    seen: set[str] = set()
    for number, name in enumerate(header, start=1):
        if not name:
            raise DatasetError(f"{path}: header column {number} has no name")
        if name in seen:
            raise DatasetError(f"{path}: header names column {name!r} twice")
        seen.add(name)
    if "prompt" not in seen:
        raise DatasetError(
            f"{path}: no 'prompt' column (header has: {', '.join(header)}); "
            "a RouterBench-style file needs prompt plus one score column per model"
        )
    inferred = [name for name in header if name not in META_COLUMNS and "|" not in name]
    prompts_only = models is not None and not models  # models=[]: only the prompts are wanted
    if models is None:
        models = inferred
    for model in models:
        if model not in seen:
            raise DatasetError(
                f"{path}: no column for model {model!r}; model columns found: "
                f"{', '.join(inferred) or 'none'}"
            )
    if not models and not prompts_only:
        raise DatasetError(f"{path}: no model score columns (header has: {', '.join(header)})")

    position = {name: index for index, name in enumerate(header)}
    response_models = [m for m in models if m + RESPONSE_SUFFIX in position]
    cost_models = [m for m in models if m + COST_SUFFIX in position]
    sample_ids: list[str] = []
    eval_names: list[str] = []
    prompts: list[str] = []
    scores: dict[str, list[float]] = {m: [] for m in models}
    responses: dict[str, list[str]] = {m: [] for m in response_models}
    costs: dict[str, list[float]] = {m: [] for m in cost_models}
    default_eval = path.stem

    for row_number, record in enumerate(reader, start=1):
        line = reader.line_num
        if not record or (len(record) == 1 and not record[0].strip()):
            continue  # blank line
        if len(record) != len(header):
            raise DatasetError(
                f"{path}: row {row_number} (line {line}) has {len(record)} fields, "
                f"the header has {len(header)} (check quoting of that row)"
            )
        prompt = record[position["prompt"]]
        if not prompt.strip():
            raise DatasetError(f"{path}: row {row_number} (line {line}), column 'prompt' is empty")
        eval_name = record[position["eval_name"]].strip() if "eval_name" in position else ""
        eval_name = eval_name or default_eval
        sample_id = record[position["sample_id"]].strip() if "sample_id" in position else ""
        sample_id = sample_id or sample_id_for(eval_name, prompt)
        for numbers, suffix, of_models in ((scores, "", models), (costs, COST_SUFFIX, cost_models)):
            for model in of_models:
                column = model + suffix
                numbers[model].append(
                    _parse_number(
                        record[position[column]].strip(),
                        path=path,
                        row=row_number,
                        line=line,
                        column=column,
                    )
                )
        for model in response_models:
            responses[model].append(record[position[model + RESPONSE_SUFFIX]])
        sample_ids.append(sample_id)
        eval_names.append(eval_name)
        prompts.append(prompt)

    if not prompts:
        raise DatasetError(f"{path}: header only, no data rows")
    return RoutingDataset(
        sample_ids=tuple(sample_ids),
        eval_names=tuple(eval_names),
        prompts=tuple(prompts),
        scores={m: np.asarray(v, dtype=float) for m, v in scores.items()},
        responses={m: tuple(v) for m, v in responses.items()},
        costs_usd={m: np.asarray(v, dtype=float) for m, v in costs.items()},
        sources=(str(path),),
    )


def dataset_columns(path: str | Path) -> list[str]:
    """The header of a CSV file (empty when the file is missing or empty)."""
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as handle:
            return [name.strip() for name in next(csv.reader(handle), [])]
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def load_datasets(
    paths: Sequence[str | Path], *, models: Iterable[str] | None = None
) -> RoutingDataset:
    """Read and concatenate several files; each must have the requested model columns."""
    if not paths:
        raise DatasetError("no dataset given (pass at least one CSV file)")
    model_list = None if models is None else list(models)
    parts = [load_dataset(path, models=model_list) for path in paths]
    return concat_datasets(parts)


def concat_datasets(parts: Sequence[RoutingDataset]) -> RoutingDataset:
    """Rows of every part, in order; keeps only the model columns that every part has."""
    if len(parts) == 1:
        return parts[0]
    common = [m for m in parts[0].models if all(m in part.scores for part in parts)]
    if not common:
        raise DatasetError(
            "the datasets share no model column: "
            + "; ".join(f"{', '.join(p.sources)} has {', '.join(p.models)}" for p in parts)
        )
    response_models = [m for m in common if all(m in p.responses for p in parts)]
    cost_models = [m for m in common if all(m in p.costs_usd for p in parts)]
    return RoutingDataset(
        sample_ids=tuple(s for p in parts for s in p.sample_ids),
        eval_names=tuple(s for p in parts for s in p.eval_names),
        prompts=tuple(s for p in parts for s in p.prompts),
        scores={m: np.concatenate([p.scores[m] for p in parts]) for m in common},
        responses={m: tuple(s for p in parts for s in p.responses[m]) for m in response_models},
        costs_usd={m: np.concatenate([p.costs_usd[m] for p in parts]) for m in cost_models},
        sources=tuple(s for p in parts for s in p.sources),
    )


# ---------------------------------------------------------------------------------------
# The scale of the outcome columns (0/1 correctness, 1-10 judge grades, 0-100 points, ...)

_SCALE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(?:-|\.\.|to|:)\s*(-?\d+(?:\.\d+)?)\s*$")


@dataclass(frozen=True)
class OutcomeScale:
    """The range of a dataset's score columns: 0-1 (correctness, reported as a percentage)
    or any other, e.g. 1-10 judge grades (reported as a grade on that scale)."""

    low: float
    high: float
    detected: bool = False

    @property
    def is_share(self) -> bool:
        return self.low == 0 and self.high == 1

    @property
    def label(self) -> str:
        return f"{self.low:g}-{self.high:g}"

    def as_dict(self) -> dict:
        return {"low": self.low, "high": self.high, "detected": self.detected}

    def check(self, dataset: RoutingDataset, *models: str) -> None:
        """A DatasetError naming the first score outside the scale."""
        for model in models:
            column = dataset.score(model)
            outside = np.flatnonzero(
                np.isfinite(column) & ((column < self.low) | (column > self.high))
            )
            if len(outside):
                row = int(outside[0])
                raise DatasetError(
                    f"{dataset._describe_sources()}: {model!r} scores row {row + 1} "
                    f"{column[row]:g}, outside the scale {self.label}; give the scale the "
                    "file uses with --scale LOW-HIGH (e.g. --scale 1-10)"
                )


def parse_scale(text: str) -> OutcomeScale:
    """``"1-10"`` -> OutcomeScale(1, 10); a DatasetError saying the form otherwise."""
    match = _SCALE.match(text or "")
    if not match:
        raise DatasetError(
            f"--scale {text!r} is not a range: write it as LOW-HIGH, e.g. --scale 0-1 for "
            "correctness or --scale 1-10 for judge grades"
        )
    low, high = float(match.group(1)), float(match.group(2))
    if not low < high:
        raise DatasetError(f"--scale {text!r}: the low end must be below the high end")
    return OutcomeScale(low, high)


def detect_scale(dataset: RoutingDataset, *models: str) -> OutcomeScale:
    """The smallest usual scale holding every score: 0-1, 1-10 (0-10 with zeros), 1-5,
    0-100, else the observed range."""
    values = np.concatenate([dataset.score(model) for model in models])
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return OutcomeScale(0.0, 1.0, detected=True)
    low, high = float(values.min()), float(values.max())
    for scale_low, scale_high in ((0, 1), (1, 5), (1, 10), (0, 10), (0, 100)):
        if scale_low <= low and high <= scale_high:
            return OutcomeScale(float(scale_low), float(scale_high), detected=True)
    return OutcomeScale(low, high, detected=True)
