"""The runner's bookkeeping, with a deterministic stand-in model: results, sample logs, resume, sharding,
bad images. End-to-end runs of the real tiny Flamingo are in test_cli_run.py."""

import json
from pathlib import Path

import pytest

from flamingo_eval.distributed import World
from flamingo_eval.errors import BadImageError, DataError
from flamingo_eval.models.base import ModelAdapter
from flamingo_eval.models.flamingo.render import render
from flamingo_eval.runner import RunConfig, Runner, subsample

FIXTURES = Path(__file__).parent / "fixtures" / "data"


class CopyLastDemo(ModelAdapter):
    """Answers with the text after the last ':' of the last demonstration; ranks options by length.

    Loads every image it is given, as a real model does, so bad images surface here too.
    """

    name = "copy-last-demo"

    def __init__(self):
        self.generated = 0

    def generate(self, prompts, settings):
        out = []
        for p in prompts:
            for c in p:
                if c.image is not None:
                    c.image.load()
            last_demo = p[-2].text if len(p) > 1 else ""
            out.append(last_demo.rsplit(":", 1)[-1])
        self.generated += len(prompts)
        return out

    def rank(self, prompts, options):
        self.generated += len(prompts)
        return [[-float(len(o)) - 0.1 * (len(p) % 3) for o in options] for p in prompts]

    def option_lengths(self, options):
        return [1 for _ in options]

    def render(self, prompt):
        return render(prompt)

    def describe(self):
        return {"name": self.name, "checkpoint_sha256": "none"}


def config(tmp_path, **kw):
    base = dict(model="copy-last-demo", tasks=["vqav2"], shots=[4], seeds=[1, 2], data_root=str(FIXTURES),
                output_dir=str(tmp_path / "runs"), batch_size=2, progress=False)
    base.update(kw)
    return RunConfig(**base)


def read_result(tmp_path, stem):
    d = tmp_path / "runs" / "copy-last-demo"
    return json.loads((d / f"{stem}.json").read_text()), [
        json.loads(line) for line in (d / f"{stem}.samples.jsonl").read_text().splitlines()]


def test_a_run_writes_a_result_and_one_sample_line_per_item_and_trial(tmp_path):
    results = Runner(config(tmp_path), model=CopyLastDemo()).run()
    assert len(results) == 1
    result, samples = read_result(tmp_path, "vqav2_4shot_random")
    assert [t["seed"] for t in result["trials"]] == [1, 2]
    assert result["mean"] == pytest.approx(sum(t["score"] for t in result["trials"]) / 2)
    for key in ("model", "task", "selection", "generation", "batch_size", "world_size", "device", "precision",
                "versions", "lock", "git_commit", "wall_time_s"):
        assert key in result
    assert result["task"]["sha256"] and result["generation"]["max_new_tokens"] == 5
    assert len(samples) == 2 * result["n"]
    first = samples[0]
    assert len(first["demos"]) == 4 and first["prompt"].count("<image>") == 5
    assert {"id", "seed", "output", "answer", "references", "score"} <= set(first)


def test_zero_shots_use_two_text_only_demonstrations(tmp_path):
    Runner(config(tmp_path, shots=[0], seeds=[1]), model=CopyLastDemo()).run()
    result, samples = read_result(tmp_path, "vqav2_0shot_random")
    assert result["zero_shot_text_only_demos"] and result["demonstrations_per_prompt"] == 2
    assert all(len(s["demos"]) == 2 and s["prompt"].count("<image>") == 1 for s in samples)


def test_each_sample_records_its_prompt_chunks_and_the_result_where_image_keys_resolve(tmp_path):
    from flamingo_eval.data import load_split
    from flamingo_eval.task import load_task

    Runner(config(tmp_path, shots=[0, 4], seeds=[1]), model=CopyLastDemo()).run()
    result, samples = read_result(tmp_path, "vqav2_4shot_random")
    task = load_task("vqav2")
    pool = {s.id: s for s in load_split(task, "demo", FIXTURES)}
    items = {s.id: s for s in load_split(task, "eval", FIXTURES)}
    for s in samples:
        chunks = s["chunks"]
        assert len(chunks) == 5 and [c["image"] for c in chunks] == [
            *(pool[d].image.key for d in s["demos"]), items[s["id"]].image.key]
        assert chunks[0]["text"] == f"Question:{pool[s['demos'][0]].question} Short answer:{pool[s['demos'][0]].answers[0]}"
        assert chunks[-1]["text"] == f"Question:{items[s['id']].question} Short answer:"
    key = samples[0]["chunks"][-1]["image"]
    prefix = max((p for p in result["data_paths"] if key.startswith(p + "/")), key=len)
    resolved = Path(result["data_paths"][prefix]) / key[len(prefix) + 1:]
    assert resolved.is_absolute() and resolved.samefile(items[samples[0]["id"]].image.path)
    _, zero = read_result(tmp_path, "vqav2_0shot_random")
    assert all([c["image"] for c in s["chunks"][:2]] == [None, None] and s["chunks"][2]["image"] for s in zero)


def test_rerunning_the_same_command_recomputes_nothing_and_gives_the_same_result(tmp_path):
    Runner(config(tmp_path), model=CopyLastDemo()).run()
    first, _ = read_result(tmp_path, "vqav2_4shot_random")
    again = CopyLastDemo()
    Runner(config(tmp_path), model=again).run()
    second, _ = read_result(tmp_path, "vqav2_4shot_random")
    assert again.generated == 0
    assert second["trials"] == first["trials"]


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path):
    class DiesAfterOneBatch(CopyLastDemo):
        def generate(self, prompts, settings):
            if self.generated >= 2:
                raise KeyboardInterrupt
            return super().generate(prompts, settings)

    with pytest.raises(KeyboardInterrupt):
        Runner(config(tmp_path, seeds=[1]), model=DiesAfterOneBatch()).run()
    resumed = CopyLastDemo()
    Runner(config(tmp_path, seeds=[1]), model=resumed).run()
    interrupted_then_resumed, _ = read_result(tmp_path, "vqav2_4shot_random")
    n = interrupted_then_resumed["n"]
    assert resumed.generated == n - 2

    fresh = tmp_path / "fresh"
    Runner(config(fresh, seeds=[1]), model=CopyLastDemo()).run()
    uninterrupted, _ = read_result(fresh, "vqav2_4shot_random")
    assert interrupted_then_resumed["trials"] == uninterrupted["trials"]


def test_a_changed_seed_or_model_never_reuses_finished_items(tmp_path):
    Runner(config(tmp_path, seeds=[1]), model=CopyLastDemo()).run()
    other_seed = CopyLastDemo()
    Runner(config(tmp_path, seeds=[3]), model=other_seed).run()
    assert other_seed.generated > 0

    class Other(CopyLastDemo):
        def describe(self):
            return {"name": self.name, "checkpoint_sha256": "different"}

    other_model = Other()
    Runner(config(tmp_path, seeds=[1]), model=other_model).run()
    assert other_model.generated > 0


def test_scores_do_not_depend_on_batch_size(tmp_path):
    Runner(config(tmp_path / "a", batch_size=1), model=CopyLastDemo()).run()
    Runner(config(tmp_path / "b", batch_size=4), model=CopyLastDemo()).run()
    a, _ = read_result(tmp_path / "a", "vqav2_4shot_random")
    b, _ = read_result(tmp_path / "b", "vqav2_4shot_random")
    assert a["trials"] == b["trials"]


def test_shards_cover_every_item_exactly_once():
    items = list(range(11))
    shards = [World(rank=r, size=3).shard(items) for r in range(3)]
    assert sorted(sum(shards, [])) == items


def test_subsample_is_deterministic_and_nested():
    from flamingo_eval.data.sample import Sample
    from flamingo_eval.prompt import Image

    items = [Sample(id=str(i), image=Image(key=str(i))) for i in range(50)]
    assert [s.id for s in subsample(items, 10)] == [s.id for s in subsample(list(reversed(items)), 10)]
    assert {s.id for s in subsample(items, 10)} <= {s.id for s in subsample(items, 20)}


def test_more_shots_than_the_pool_is_refused_before_any_model_work(tmp_path):
    with pytest.raises(DataError, match="32 shots need 32 demonstrations but the demonstration pool holds"):
        Runner(config(tmp_path, shots=[32]), model=CopyLastDemo())


def _break_one_eval_image(tmp_path):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(FIXTURES, root)
    from flamingo_eval.data import load_split
    from flamingo_eval.task import load_task

    victim = load_split(load_task("vqav2"), "eval", str(root))[0]
    Path(victim.image.path).write_bytes(b"not an image")
    return root, victim


def test_a_corrupt_image_stops_the_run_naming_it_and_keeps_finished_items(tmp_path):
    root, victim = _break_one_eval_image(tmp_path)
    with pytest.raises(BadImageError, match=victim.image.path):
        Runner(config(tmp_path, data_root=str(root), seeds=[1], batch_size=1), model=CopyLastDemo()).run()
    logged = list((tmp_path / "runs" / "copy-last-demo" / "items").glob("*.jsonl"))
    assert logged and logged[0].read_text().count("\n") >= 1


def test_skip_bad_images_counts_the_skipped_item(tmp_path):
    root, victim = _break_one_eval_image(tmp_path)
    Runner(config(tmp_path, data_root=str(root), seeds=[1], skip_bad_images=True), model=CopyLastDemo()).run()
    result, samples = read_result(tmp_path, "vqav2_4shot_random")
    assert result["trials"][0]["skipped"] == 1
    assert [s for s in samples if s["id"] == victim.id][0]["skipped"].startswith("bad image")


def test_rices_runs_one_trial_with_similar_demonstrations_last(tmp_path, tiny_clip):
    Runner(config(tmp_path, rices=True, rices_encoder=tiny_clip, rices_pretrained=None, seeds=[1, 2]),
           model=CopyLastDemo()).run()
    result, samples = read_result(tmp_path, "vqav2_4shot_rices")
    assert result["selection"]["selection"] == "rices" and len(result["trials"]) == 1
    for s in samples:
        sims = s["similarities"]
        assert len(sims) == 4 and sims == sorted(sims)  # most similar last, next to the query


# ---- streamed samples: the same bytes as when every record was held in memory -----------------------------

GOLDEN = Path(__file__).parent / "golden" / "runner"  # written by the in-memory runner before it streamed (2a0d38b)
GOLDEN_VOLATILE = ("wall_time_s", "created", "git_commit", "versions", "lock", "data_paths")


def golden_config(tmp_path, **kw):
    return config(tmp_path, tasks=["vqav2", "hateful_memes"], shots=[0, 2], seeds=[1, 2], **kw)


def assert_matches_golden(tmp_path, world_size=1):
    run_dir = tmp_path / "runs" / "copy-last-demo"
    stems = sorted(p.name[:-len(".samples.jsonl")] for p in GOLDEN.glob("*.samples.jsonl"))
    assert len(stems) == 4
    for stem in stems:
        assert (run_dir / f"{stem}.samples.jsonl").read_bytes() == (GOLDEN / f"{stem}.samples.jsonl").read_bytes()
        result = json.loads((run_dir / f"{stem}.json").read_text())
        assert result["world_size"] == world_size
        assert {k: v for k, v in result.items() if k not in GOLDEN_VOLATILE} == {
            **json.loads((GOLDEN / f"{stem}.json").read_text()), "world_size": world_size}


def test_results_and_samples_are_byte_identical_to_the_in_memory_runner(tmp_path):
    Runner(golden_config(tmp_path), model=CopyLastDemo()).run()
    assert_matches_golden(tmp_path)


def test_a_resumed_run_writes_the_same_bytes_from_records_logged_by_two_runs(tmp_path):
    class DiesAfterThreeBatches(CopyLastDemo):
        def generate(self, prompts, settings):
            if self.generated >= 6:
                raise KeyboardInterrupt
            return super().generate(prompts, settings)

    with pytest.raises(KeyboardInterrupt):
        Runner(golden_config(tmp_path), model=DiesAfterThreeBatches()).run()
    assert not list((tmp_path / "runs" / "copy-last-demo").glob("*.samples.jsonl"))
    Runner(golden_config(tmp_path), model=CopyLastDemo()).run()
    assert_matches_golden(tmp_path)


def test_two_processes_write_the_same_bytes_rank_0_gathering_answers_and_streaming_records(tmp_path):
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=str(root), OMP_NUM_THREADS="1")
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                          str(29700 + os.getpid() % 1000), str(root / "tests" / "helpers_golden_run.py"),
                          str(tmp_path)], env=env, capture_output=True, text=True)
    assert two.returncode == 0, two.stderr[-2000:]
    assert_matches_golden(tmp_path, world_size=2)
