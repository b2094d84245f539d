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
