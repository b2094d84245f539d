"""Leaderboard: one row per (model, task, shots, selection), beside the published numbers; CSV, markdown, PNG."""

import pandas as pd
import pytest

from flamingo_eval.cli import main
from flamingo_eval.errors import UserError
from flamingo_eval.leaderboard import leaderboard, published
from tests.helpers_results import write_result


def test_published_table_holds_openflamingo_and_flamingo_numbers():
    table = published()
    assert table[("of-9b", "coco", 4, "random")]["score"] == "89.0"
    assert table[("of-9b", "vqav2", 32, "rices")]["score"] == "56.8"
    assert table[("flamingo-9b", "okvqa", 0, "random")]["score"] == "44.7"


def test_csv_has_one_row_per_key_with_the_newest_run_and_published_numbers(tmp_path):
    write_result(tmp_path / "a", "of-9b", "coco", 4, [80.0, 82.0], created="2026-01-01T00:00:00+00:00")
    write_result(tmp_path / "b", "of-9b", "coco", 4, [88.0, 90.0], created="2026-02-01T00:00:00+00:00")
    write_result(tmp_path / "a", "of-9b", "coco", 0, [70.0])
    out = tmp_path / "lb.csv"
    leaderboard([str(tmp_path)], out, tmp_path / "lb.md", None)
    df = pd.read_csv(out)
    assert len(df) == 2
    row = df[(df.shots == 4)].iloc[0]
    assert row["mean"] == 89.0 and row["std"] == 1.0 and row["trials"] == 2
    assert row["published"] == 89.0 and row["flamingo_9b"] == 93.1
    assert "| of-9b | coco | 4 | random |" in (tmp_path / "lb.md").read_text()


def test_plot_is_a_real_png_with_content(tmp_path):
    for shots, score in [(0, 10.0), (4, 20.0), (8, 25.0)]:
        write_result(tmp_path, "toy", "coco", shots, [score, score + 1])
        write_result(tmp_path, "toy", "vqav2", shots, [score / 2], metric="vqa_accuracy")
    png = tmp_path / "shots.png"
    assert main(["leaderboard", str(tmp_path), "--out", str(tmp_path / "x.csv"), "--plot", str(png)]) == 0
    from PIL import Image

    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] > 400
        colors = im.convert("RGB").getcolors(maxcolors=1_000_000)
        assert len(colors) > 20  # axes, lines and text, not a blank canvas


def test_no_results_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="no result files"):
        leaderboard([str(tmp_path)], None, None, None)


def test_a_measured_idefics_row_shows_its_published_figure_and_the_second_source(tmp_path):
    write_result(tmp_path, "idefics-9b", "coco", 8, [96.0, 98.0])
    write_result(tmp_path, "idefics-9b", "vqav2:test-dev", 8, [56.0], metric="vqa_accuracy")
    write_result(tmp_path, "idefics-80b", "coco", 32, [115.0])
    out = tmp_path / "lb.csv"
    leaderboard([str(tmp_path)], out, tmp_path / "lb.md", None)
    df = pd.read_csv(out, keep_default_na=False).set_index(["model", "task", "shots"])
    coco = df.loc[("idefics-9b", "coco", 8)]
    assert coco["published"] == 97.0 and "Idefics model card" in coco["published_source"]
    assert coco["published_other"] == "97.0 (idefics2-paper)"
    assert coco["flamingo_9b"] == 99.0  # the OpenFlamingo paper's quote of Flamingo comes first
    assert df.loc[("idefics-9b", "vqav2:test-dev", 8)]["published"] == 56.4
    big = df.loc[("idefics-80b", "coco", 32)]
    assert big["published"] == 116.6 and big["published_other"] == ""
    assert "97.0 (idefics2-paper)" in (tmp_path / "lb.md").read_text()


def test_published_flag_lists_the_published_only_models_on_the_measured_tasks(tmp_path):
    write_result(tmp_path, "idefics-9b", "coco", 8, [96.0, 98.0])
    out = tmp_path / "lb.csv"
    assert main(["leaderboard", str(tmp_path), "--out", str(out), "--plot", str(tmp_path / "p.png"),
                 "--published"]) == 0
    df = pd.read_csv(out, keep_default_na=False)
    assert set(df.task) == {"coco"}  # only the tasks measured here
    mm1 = df[(df.model == "mm1-7b") & (df.shots == 8)].iloc[0]
    assert mm1["mean"] == "" and mm1["published"] == 116.3 and mm1["metric"] == "cider"
    assert len(df[(df.model == "idefics-9b") & (df.shots == 8)]) == 1  # the measured row, not a second one
    assert len(df[df["mean"] != ""]) == 1
    assert len(pd.read_csv(out)) > 50  # OpenFlamingo, Flamingo, Idefics, MM1 and Idefics2 on COCO


def test_controls_are_rows_keyed_by_their_selection_variant_with_the_baselines_beside_the_score(tmp_path):
    import json

    for selection, score in [("random", 80.0), ("random+demo-answers-shuffle", 60.0)]:
        path = write_result(tmp_path, "of-toy", "coco", 4, [score], selection=selection)
        data = json.loads(path.read_text())
        data["baselines"] = {"majority": 50.0, "last": 45.5, "copy_rate": 12.5, "copy_last_rate": 6.25}
        path.write_text(json.dumps(data))
    write_result(tmp_path, "of-toy", "coco", 0, [40.0])  # written before the baselines: blank columns
    rows = leaderboard([str(tmp_path)], tmp_path / "lb.csv", tmp_path / "lb.md", None)
    assert [(r["shots"], r["selection"], r["mean"], r["majority"]) for r in rows] == [
        (0, "random", 40.0, ""), (4, "random", 80.0, 50.0), (4, "random+demo-answers-shuffle", 60.0, 50.0)]
    df = pd.read_csv(tmp_path / "lb.csv")
    assert list(df.columns[9:13]) == ["majority", "last", "copy_rate", "copy_last_rate"]
    assert df.iloc[2]["last"] == 45.5 and df.iloc[2]["copy_last_rate"] == 6.25
    assert "| of-toy | coco | 4 | random+demo-answers-shuffle | cider | 60.0 |" in (tmp_path / "lb.md").read_text()
