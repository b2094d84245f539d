"""The CLI: listing, the bare form, one-line errors."""

import subprocess
import sys

from flamingo_eval.cli import main


def test_ls_tasks_lists_the_seven_tasks_with_metric_and_files(capsys):
    assert main(["ls", "tasks"]) == 0
    out = capsys.readouterr().out
    for name in ["coco", "flickr30k", "vqav2", "okvqa", "textvqa", "vizwiz", "hateful_memes"]:
        assert f"\n{name} " in "\n" + out
    assert "cider" in out and "vqa_accuracy" in out and "roc_auc" in out
    assert "<data-root>/vqav2/v2_OpenEnded_mscoco_val2014_questions.json" in out


def test_module_entry_point_runs():
    r = subprocess.run([sys.executable, "-m", "flamingo_eval", "ls", "tasks"], capture_output=True, text=True)
    assert r.returncode == 0 and "hateful_memes" in r.stdout


def test_ls_tasks_shows_each_variant_and_the_files_it_adds(capsys):
    assert main(["ls", "tasks"]) == 0
    out = capsys.readouterr().out
    assert "variant hateful_memes:dev_seen" in out and "<data-root>/hateful_memes/dev_seen.jsonl" in out
    assert "variant vqav2:test-dev" in out and "<data-root>/vqav2/v2_OpenEnded_mscoco_test-dev2015_questions.json" in out
    assert "variant vizwiz:test-dev" in out
    assert "<data-root>/textvqa/val_questions_vqa_format.json or <data-root>/textvqa/TextVQA_0.5.1_val.json" in out
