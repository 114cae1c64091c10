"""Loading RouterBench-style CSVs: any model columns, optional answers and costs, and
errors that name the file, row and column."""

from __future__ import annotations

import pytest

from routing_platform.engine.quality.dataset import (
    DatasetError,
    concat_datasets,
    load_dataset,
    load_datasets,
    sample_id_for,
)
from tests.engine.quality.conftest import STRONG, WEAK, synthetic_rows, write_csv


def test_loads_models_answers_and_costs(tmp_path):
    """Three model columns, an answer column and cost columns are all read."""
    path = tmp_path / "bench.csv"
    path.write_text(
        "sample_id,eval_name,prompt,a,b,c,b|model_response,a|total_cost,b|total_cost,"
        "oracle_model_to_route_to\n"
        's1,mmlu-x,"Q1\nA. x\nB. y",1,0,0.5,"answer, with comma",0.02,0.001,a\n'
        "s2,mmlu-x,Q2,0,1,1,fine,0.03,0.002,b\n"
    )
    dataset = load_dataset(path)
    assert dataset.models == ("a", "b", "c")
    assert dataset.prompts[0] == "Q1\nA. x\nB. y"
    assert dataset.score("c").tolist() == [0.5, 1.0]
    assert dataset.response("b") == ("answer, with comma", "fine")
    assert dataset.response("a") is None
    assert dataset.costs_usd["a"].tolist() == [0.02, 0.03]


def test_selected_models_only_and_defaults_for_missing_columns(tmp_path):
    """Without sample_id/eval_name the id is derived and the eval name is the file stem."""
    path = tmp_path / "mybench.csv"
    path.write_text("prompt,a,b\nhello,1,0\n")
    dataset = load_dataset(path, models=["b"])
    assert dataset.models == ("b",)
    assert dataset.eval_names == ("mybench",)
    assert dataset.sample_ids == (sample_id_for("mybench", "hello"),)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty file"),
        ("sample_id,question,a\n1,q,1\n", "no 'prompt' column"),
        ("prompt,a,a\nq,1,1\n", "names column 'a' twice"),
        ("prompt,a,b\n", "header only"),
        ("prompt,a,b\nq,1,0\nq2,1\n", "row 2 \\(line 3\\) has 2 fields"),
        ("prompt,a,b\nq,1,0\n ,1,0\n", "row 2 \\(line 3\\), column 'prompt' is empty"),
        ("prompt,a,b\nq,1,0\nq2,yes,0\n", "row 2 \\(line 3\\), column 'a': 'yes' is not a number"),
        ("prompt,a,b\nq,1,0\nq2,1,inf\n", "row 2 \\(line 3\\), column 'b': 'inf'"),
        ("prompt,a,b,a|total_cost\nq,1,0,cheap\n", "column 'a\\|total_cost'"),
    ],
)
def test_malformed_files_name_row_and_column(tmp_path, content, message):
    """Each malformed file is refused with the place of the problem."""
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DatasetError, match=message):
        load_dataset(path)


def test_row_numbers_count_records_not_lines(tmp_path):
    """A multi-line prompt does not shift the reported row number."""
    path = tmp_path / "multi.csv"
    path.write_text('prompt,a,b\n"line 1\nline 2\nline 3",1,0\nq,1,oops\n')
    with pytest.raises(DatasetError, match="row 2 \\(line 5\\), column 'b'"):
        load_dataset(path)


def test_missing_model_column_lists_the_ones_found(synthetic_csv):
    """Asking for an unknown model names the model columns the file has."""
    with pytest.raises(DatasetError, match=f"no column for model 'gpt-5'.*{STRONG}"):
        load_dataset(synthetic_csv, models=["gpt-5"])


def test_missing_file_and_non_utf8(tmp_path):
    """A missing path and a binary file are DatasetErrors, not tracebacks."""
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(tmp_path / "absent.csv")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"prompt,a\n\xff\xfe,1\n")
    with pytest.raises(DatasetError, match="not UTF-8"):
        load_dataset(binary)


def test_several_files_concatenate_on_their_common_models(tmp_path):
    """Rows of both files, in order; only the model columns both have are kept."""
    first = write_csv(tmp_path / "one.csv", synthetic_rows(12))
    second = tmp_path / "two.csv"
    second.write_text(f"prompt,{STRONG},{WEAK},other\nq,1,0,1\n")
    dataset = load_datasets([first, second])
    assert len(dataset) == 13
    assert set(dataset.models) == {STRONG, WEAK}
    assert dataset.response(WEAK) is None  # the second file has no answers
    assert dataset.sources == (str(first), str(second))
    with pytest.raises(DatasetError, match="at least one"):
        load_datasets([])


def test_concat_refuses_files_without_a_shared_model(tmp_path):
    """Two files with disjoint model columns cannot be compared."""
    one = tmp_path / "one.csv"
    one.write_text("prompt,a\nq,1\n")
    two = tmp_path / "two.csv"
    two.write_text("prompt,b\nq,1\n")
    with pytest.raises(DatasetError, match="share no model"):
        concat_datasets([load_dataset(one), load_dataset(two)])


def test_subset_keeps_columns_aligned(synthetic_csv):
    """Picking rows keeps prompts, scores and answers of the same rows together."""
    dataset = load_dataset(synthetic_csv)
    part = dataset.subset([5, 2])
    assert part.sample_ids == ("s0005", "s0002")
    assert part.score(WEAK).tolist() == [dataset.score(WEAK)[5], dataset.score(WEAK)[2]]
    assert part.response(WEAK) == (dataset.response(WEAK)[5], dataset.response(WEAK)[2])


def test_shared_files_load(routellm_dir):
    """The development files load with both models and, for GSM8K, their answers."""
    mmlu = load_dataset(routellm_dir / "mmlu_dev.csv")
    gsm8k = load_dataset(routellm_dir / "gsm8k_dev.csv")
    assert len(mmlu) == 9586 and len(gsm8k) == 923
    assert mmlu.models == ("gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1")
    assert gsm8k.response("mistralai/Mixtral-8x7B-Instruct-v0.1") is not None
    assert round(float(mmlu.score("gpt-4-1106-preview").mean()), 3) == 0.817


def test_missing_scores_are_left_out_not_fatal(tmp_path):
    """Empty / NaN cells mean "not recorded": those rows drop out of that comparison."""
    path = tmp_path / "gaps.csv"
    path.write_text("prompt,a,b,c\nq1,1,0,\nq2,1,NaN,1\nq3,0,1,1\n")
    dataset = load_dataset(path)
    kept, skipped = dataset.with_outcomes("a", "b")
    assert (len(kept), skipped) == (2, 1)
    assert kept.prompts == ("q1", "q3")
    same, none_skipped = dataset.with_outcomes("a")
    assert same is dataset and none_skipped == 0
    empty = tmp_path / "empty.csv"
    empty.write_text("prompt,a,b\nq1,1,\n")
    with pytest.raises(DatasetError, match="no row"):
        load_dataset(empty).with_outcomes("a", "b")
