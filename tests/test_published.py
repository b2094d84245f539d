"""The published numbers in results/reference/: well-formed files, valid keys, the figures as published, and
a fixed precedence that keeps every source's figure."""

import re

import pytest

from flamingo_eval.published import (
    COLUMNS,
    REFERENCE_DIR,
    SOURCES,
    others_text,
    published,
    published_all,
    read_source,
)
from flamingo_eval.task import load_task

SHOTS = {0, 4, 8, 16, 32}
SELECTIONS = {"random", "rices"}
MODEL_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]*$")


def test_every_reference_csv_is_a_listed_source():
    """A CSV dropped into results/reference/ without a place in the precedence would be silently ignored."""
    assert sorted(p.stem for p in REFERENCE_DIR.glob("*.csv")) == sorted(SOURCES)


@pytest.mark.parametrize("name", SOURCES)
def test_source_parses_with_the_expected_columns(name):
    with open(REFERENCE_DIR / f"{name}.csv", newline="") as f:
        assert f.readline().strip() == ",".join(COLUMNS)
    assert read_source(REFERENCE_DIR / f"{name}.csv")  # raises on a missing score or a repeated key


@pytest.mark.parametrize("name", SOURCES)
def test_source_keys_and_values_are_valid(name):
    metrics: dict[str, str] = {}
    for row in read_source(REFERENCE_DIR / f"{name}.csv"):
        where = f"{name}: {row['model']} {row['task']} {row['shots']} {row['selection']}"
        assert MODEL_NAME.match(row["model"]), where
        if row["task"] not in metrics:
            metrics[row["task"]] = load_task(row["task"]).metric  # the task, or task:variant, exists
        assert row["shots"] in SHOTS, where
        assert row["selection"] in SELECTIONS, where
        score = float(row["score"])
        assert 0 <= score <= (200 if metrics[row["task"]] == "cider" else 100), where  # CIDEr may pass 100
        assert row["std"] == "" or 0 <= float(row["std"]) < 20, where
        assert row["trials"] == "" or int(row["trials"]) >= 1, where
        assert row["source"].strip(), where


def test_a_repeated_key_within_one_file_is_refused(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text(",".join(COLUMNS) + "\n" + "x,coco,4,random,1.0,,,a\n" + "x,coco,4,random,2.0,,,b\n")
    with pytest.raises(ValueError, match="appears twice"):
        read_source(path)


def test_wrong_columns_are_refused(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("model,task,shots,score\nx,coco,4,1.0\n")
    with pytest.raises(ValueError, match="columns"):
        read_source(path)


def test_the_idefics_model_card_figures_load():
    table = published()
    assert table[("idefics-80b", "coco", 32, "random")]["score"] == "116.6"
    assert table[("idefics-9b", "vqav2:test-dev", 0, "random")]["score"] == "50.9"
    assert table[("idefics-9b", "hateful_memes", 32, "random")]["score"] == "49.8"
    assert table[("idefics-80b", "flickr30k", 16, "random")]["score"] == "80.1"
    assert table[("idefics-9b-instruct", "coco", 0, "random")]["score"] == "129.1"
    assert table[("idefics-80b-instruct", "vqav2:test-dev", 0, "random")]["score"] == "37.4"
    assert table[("idefics-80b-instruct", "textvqa", 32, "random")]["score"] == "39.3"
    assert table[("idefics-9b", "textcaps", 0, "random")]["score"] == "25.4"
    assert table[("idefics-9b", "nocaps", 32, "random")]["score"] == "90.5"
    assert table[("idefics-80b", "nocaps", 16, "random")]["score"] == "107.0"
    assert table[("idefics-80b", "textcaps", 0, "random")]["score"] == "56.8"
    assert table[("idefics-80b", "textcaps", 8, "random")]["score"] == "77.6"
    assert table[("idefics-80b", "nocaps", 4, "random")]["score"] == "99.6"
    assert table[("idefics-80b", "imagenet", 16, "rices")]["score"] == "72.9"
    assert table[("idefics-9b", "imagenet", 16, "rices")]["score"] == "64.5"
    assert table[("idefics-80b", "imagenet", 16, "random")]["score"] == "65.4"
    assert table[("idefics-9b", "imagenet", 16, "random")]["score"] == "53.5"
    card = read_source(REFERENCE_DIR / "idefics-model-card.csv")
    # 9B and 80B, base and instruct: seven tasks at 0/4/8/16/32 shots; TextCaps and NoCaps: the base 9B and 80B at
    # all five; ImageNet: 9B and 80B at 16 shots, RICES and random
    assert len(card) == 4 * 7 * 5 + 2 * 2 * 5 + 4


def test_the_idefics2_paper_figures_load():
    table = published()
    assert table[("idefics2-8b-base", "vqav2:test-dev", 8, "random")]["score"] == "70.3"
    assert table[("idefics2-8b-base", "coco", 8, "random")]["score"] == "116.0"
    assert table[("mm1-7b", "textvqa", 8, "random")]["score"] == "46.3"
    assert table[("flamingo-9b", "vqav2:test-dev", 8, "random")]["score"] == "58.0"
    assert len(read_source(REFERENCE_DIR / "idefics2-paper.csv")) == 5 * 4


def test_the_openflamingo_figures_are_unchanged():
    table = published()
    assert table[("of-9b", "coco", 4, "random")]["score"] == "89.0"
    assert table[("of-9b", "vqav2", 32, "rices")]["score"] == "56.8"
    assert table[("flamingo-9b", "okvqa", 0, "random")]["score"] == "44.7"


def test_a_key_in_two_sources_shows_the_first_and_keeps_the_other():
    table = published()
    of9b = table[("of-9b", "coco", 8, "random")]
    assert (of9b["score"], of9b["label"]) == ("96.3", "openflamingo-paper")
    assert [(o["score"], o["label"]) for o in of9b["others"]] == [("96.3", "idefics2-paper")]
    idefics = table[("idefics-9b", "okvqa", 8, "random")]
    assert (idefics["score"], idefics["label"]) == ("47.7", "idefics-model-card")
    assert others_text(idefics) == "47.7 (idefics2-paper)"
    assert table[("idefics-80b", "coco", 32, "random")]["others"] == []


def test_no_figure_is_lost_across_sources():
    rows = sum(len(read_source(REFERENCE_DIR / f"{name}.csv")) for name in SOURCES)
    assert sum(len(v) for v in published_all().values()) == rows
    assert sum(1 + len(r["others"]) for r in published().values()) == rows


def test_precedence_follows_the_sources_order(tmp_path):
    for name, score in (("first", "1.0"), ("second", "2.0")):
        (tmp_path / f"{name}.csv").write_text(",".join(COLUMNS) + f"\nm,coco,4,random,{score},,,{name}\n")
    assert published(tmp_path, ("first", "second"))[("m", "coco", 4, "random")]["score"] == "1.0"
    row = published(tmp_path, ("second", "first"))[("m", "coco", 4, "random")]
    assert row["score"] == "2.0" and others_text(row) == "1.0 (first)"
