"""`flamingo-eval data unpack imagenet --from DIR`: parquet shards in the format of the Hugging Face dataset
ILSVRC/imagenet-1k (``image`` {bytes, path}, ``label``) into the ImageFolder trees the imagenet task reads,
class folders 0000-0999 by label; the bytes as they are, resumable, one line for each kind of bad input."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flamingo_eval.cli import main
from flamingo_eval.data import load_split
from flamingo_eval.data_setup.unpack import file_name
from flamingo_eval.task import load_task

SCHEMA = pa.schema([("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])), ("label", pa.int64())])


def jpeg(color: tuple[int, int, int], width: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, 16), color).save(out, format="JPEG")
    return out.getvalue()


IMAGES = [jpeg((200, 30, 30), 16), jpeg((30, 30, 200), 17), jpeg((30, 200, 30), 18), jpeg((220, 220, 40), 19),
          jpeg((90, 90, 90), 20)]
# (bytes, image.path, label) per shard, in the dataset's file names; one path null, one with folders before it
SHARDS = {
    "train-00000-of-00002.parquet": [(IMAGES[0], "n01440764_1.JPEG", 0), (IMAGES[1], None, 1),
                                     (IMAGES[2], "train/n01484850/n01484850_7.JPEG", 2)],
    "train-00001-of-00002.parquet": [(IMAGES[3], "n01484850_9.JPEG", 2), (IMAGES[4], "n01440764_4.JPEG", 0)],
    "validation-00000-of-00001.parquet": [(IMAGES[4], "ILSVRC2012_val_00000001.JPEG", 1),
                                          (IMAGES[0], "ILSVRC2012_val_00000002.JPEG", 0),
                                          (IMAGES[2], None, 2)],
}
TRAIN = {"0000/n01440764_1.JPEG": IMAGES[0], "0001/train-00000-000001.JPEG": IMAGES[1],
         "0002/n01484850_7.JPEG": IMAGES[2], "0002/n01484850_9.JPEG": IMAGES[3], "0000/n01440764_4.JPEG": IMAGES[4]}
VAL = {"0001/ILSVRC2012_val_00000001.JPEG": IMAGES[4], "0000/ILSVRC2012_val_00000002.JPEG": IMAGES[0],
       "0002/val-00000-000002.JPEG": IMAGES[2]}


def write_shard(path, rows, schema=SCHEMA, row_group_size=2):
    table = pa.Table.from_pylist([{"image": {"bytes": b, "path": p}, "label": label} for b, p, label in rows],
                                 schema=schema)
    pq.write_table(table, path, row_group_size=row_group_size)  # row groups of 2: a shard is read in several


@pytest.fixture
def hub(tmp_path):
    """The downloaded dataset folder: shards under data/, as `hf download ... --local-dir` leaves them."""
    data = tmp_path / "imagenet-1k" / "data"
    data.mkdir(parents=True)
    for name, rows in SHARDS.items():
        write_shard(data / name, rows)
    return data.parent


def unpack(source, root, *extra):
    return main(["data", "unpack", "imagenet", "--from", str(source), "--data-root", str(root), *extra])


def files(tree):
    return {str(p.relative_to(tree)): p.read_bytes() for p in sorted(tree.rglob("*")) if p.is_file()}


def test_each_row_goes_to_its_label_folder_with_its_bytes_as_they_are(hub, tmp_path, capsys):
    root = tmp_path / "data"
    assert unpack(hub, root) == 0
    out = capsys.readouterr().out
    assert files(root / "imagenet/train") == TRAIN and files(root / "imagenet/val") == VAL
    for split in ("train", "val"):  # every class folder, so a partly unpacked tree shifts no label
        folders = sorted(p.name for p in (root / "imagenet" / split).iterdir())
        assert folders == [f"{i:04d}" for i in range(1000)]
    shard_lines = [line for line in out.splitlines() if " shard " in line]
    assert len(shard_lines) == 3  # one progress line per shard
    assert "train shard 00001 of 00002 (train-00001-of-00002.parquet): 2 images, 2 written, 0 already there" in out
    assert f"next: flamingo-eval data check imagenet --data-root {root}" in out


def test_the_imagenet_task_reads_the_unpacked_tree_with_the_labels(hub, tmp_path, capsys):
    root = tmp_path / "data"
    assert unpack(hub, root) == 0
    task = load_task("imagenet")
    train = load_split(task, "demo", root)
    assert {s.id: s.label for s in train} == {name: int(name[:4]) for name in TRAIN}
    val = load_split(task, "eval", root)
    assert {s.id: s.label for s in val} == {name: int(name[:4]) for name in VAL}
    assert all(open(s.image.path, "rb").read() == VAL[s.id] for s in val)
    capsys.readouterr()
    assert main(["data", "check", "imagenet", "--data-root", str(root)]) == 0
    assert "images imagenet/val/: all 3 present" in capsys.readouterr().out


def test_run_ranks_the_unpacked_tree_over_the_packaged_1000_names_in_label_order(tmp_path):
    """Every label in the train shards (the run refuses a pool without all 1000 classes): each demonstration's
    answer is the packaged name of its folder's label, each query's reference its folder's label."""
    import json
    from importlib.resources import files as package_files

    data = tmp_path / "hub" / "data"
    data.mkdir(parents=True)
    write_shard(data / "train-00000-of-00002.parquet", [(IMAGES[i % 5], f"t{i}.JPEG", i) for i in range(500)],
                row_group_size=128)
    write_shard(data / "train-00001-of-00002.parquet", [(IMAGES[i % 5], None, i) for i in range(500, 1000)],
                row_group_size=128)
    write_shard(data / "validation-00000-of-00001.parquet", SHARDS["validation-00000-of-00001.parquet"])
    root, out = tmp_path / "data", tmp_path / "runs"
    assert unpack(data.parent, root) == 0
    assert main(["run", "--model", "of-toy", "--task", "imagenet", "--shots", "0", "--data-root", str(root),
                 "--output-dir", str(out), "--quiet"]) == 0
    text = (package_files("flamingo_eval.data") / "imagenet_classnames.txt").read_text(encoding="utf-8")
    names = [line.strip() for line in text.splitlines() if not line.startswith("#")]
    samples = [json.loads(x) for x in (out / "of-toy/imagenet_0shot_random.samples.jsonl").read_text().splitlines()]
    assert sorted(s["id"] for s in samples) == sorted(VAL)
    for s in samples:
        assert s["references"] == int(s["id"][:4])
        assert s["demo_answers"] == [names[int(d[:4])] for d in s["demos"]]


def test_a_second_run_writes_nothing_and_an_interrupted_one_continues(hub, tmp_path, capsys):
    root = tmp_path / "data"
    assert unpack(hub, root) == 0
    stamps = {p: p.stat().st_mtime_ns for p in (root / "imagenet").rglob("*.JPEG")}
    capsys.readouterr()
    assert unpack(hub, root) == 0
    out = capsys.readouterr().out
    assert out.count(" 0 written") == 3 and "3 images, 0 written, 3 already there" in out
    assert {p: p.stat().st_mtime_ns for p in (root / "imagenet").rglob("*.JPEG")} == stamps
    # an interrupted run: one image never renamed into place, its temporary file left behind
    (root / "imagenet/val/0002/val-00000-000002.JPEG").unlink()
    (root / "imagenet/val/0002/.val-00000-000002.JPEG.part").write_bytes(b"partial")
    assert len(load_split(load_task("imagenet"), "eval", root)) == 2  # the reader does not list the .part file
    assert unpack(hub, root, "--split", "val") == 0
    assert "3 images, 1 written, 2 already there" in capsys.readouterr().out
    assert files(root / "imagenet/val") == VAL and not list(root.rglob("*.part"))


def test_shards_in_the_folder_itself_and_one_split(hub, tmp_path):
    root = tmp_path / "data"
    assert unpack(hub / "data", root, "--split", "val") == 0
    assert files(root / "imagenet/val") == VAL and not (root / "imagenet/train").exists()


def test_a_name_taken_by_another_image_gets_the_row_name(tmp_path, capsys):
    data = tmp_path / "hub"
    data.mkdir()
    write_shard(data / "validation-00000-of-00001.parquet",
                [(IMAGES[0], "same.JPEG", 3), (IMAGES[1], "same.JPEG", 3), (IMAGES[2], "../x/notes.txt", 3)])
    assert unpack(data, tmp_path / "data", "--split", "val") == 0
    assert "3 images, 3 written, 1 of them under <split>-<shard>-<row> (name taken)" in capsys.readouterr().out
    want = {"0003/same.JPEG": IMAGES[0], "0003/val-00000-000001.JPEG": IMAGES[1],
            "0003/val-00000-000002.JPEG": IMAGES[2]}
    assert files(tmp_path / "data/imagenet/val") == want
    assert unpack(data, tmp_path / "data", "--split", "val") == 0
    assert "3 images, 0 written, 3 already there" in capsys.readouterr().out
    assert files(tmp_path / "data/imagenet/val") == want


def test_file_names_from_image_path():
    assert file_name("n01440764_1.JPEG") == "n01440764_1.JPEG"
    assert file_name("train/n01440764/n01440764_1.JPEG") == "n01440764_1.JPEG"
    assert file_name("C:\\imagenet\\val\\ILSVRC2012_val_00000001.JPEG") == "ILSVRC2012_val_00000001.JPEG"
    for bad in (None, "", "train/", "..", ".hidden.JPEG", "notes.txt", "a" * 300 + ".JPEG"):
        assert file_name(bad) is None, bad


def one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def test_a_split_without_shards_is_one_line_and_nothing_is_written(hub, tmp_path, capsys):
    (hub / "data/validation-00000-of-00001.parquet").unlink()
    root = tmp_path / "data"
    assert unpack(hub, root) == 2
    line = one_error_line(capsys)
    assert "no parquet shards of the val split (validation-NNNNN-of-NNNNN.parquet)" in line
    assert "ILSVRC/imagenet-1k" in line and not root.exists()
    assert unpack(hub, root, "--split", "train") == 0  # the split that is there unpacks


@pytest.mark.parametrize("drop", ["image", "label"])
def test_a_shard_without_a_column_is_one_line(hub, tmp_path, capsys, drop):
    shard = hub / "data/train-00001-of-00002.parquet"
    pq.write_table(pq.read_table(shard).drop_columns([drop]), shard)
    root = tmp_path / "data"
    assert unpack(hub, root) == 2
    line = one_error_line(capsys)
    assert f"{shard}: no {drop!r} column" in line and not root.exists()


def test_an_image_column_of_another_type_or_a_truncated_shard_is_one_line(hub, tmp_path, capsys):
    shard = hub / "data/validation-00000-of-00001.parquet"
    pq.write_table(pa.table({"image": [IMAGES[0]], "label": [0]}), shard)
    assert unpack(hub, tmp_path / "data", "--split", "val") == 2
    assert "column 'image' is binary, not the struct {bytes, path}" in one_error_line(capsys)
    write_shard(shard, SHARDS[shard.name])
    shard.write_bytes(shard.read_bytes()[:-100])  # an interrupted download
    assert unpack(hub, tmp_path / "data", "--split", "val") == 2
    assert f"{shard}: not a readable parquet file" in one_error_line(capsys)


@pytest.mark.parametrize("label", [1000, -1])
def test_a_label_outside_0_999_is_one_line(hub, tmp_path, capsys, label):
    shard = hub / "data/validation-00000-of-00001.parquet"
    write_shard(shard, [(IMAGES[0], "a.JPEG", 0), (IMAGES[1], "b.JPEG", label)])
    root = tmp_path / "data"
    assert unpack(hub, root, "--split", "val") == 2
    line = one_error_line(capsys)
    assert f"{shard}: row 1 has label {label}, outside 0..999" in line
    assert not any((root / "imagenet/val").rglob("*.JPEG"))  # nothing of the shard is written


def test_a_tree_of_wordnet_id_folders_is_refused(hub, tmp_path, capsys):
    from tests.imagenet_fixture import make_imagenet

    make_imagenet(tmp_path / "data")
    assert unpack(hub, tmp_path / "data") == 2
    assert "holds class folders not named by label (n01440764, n01443537, n01484850, ...)" in one_error_line(capsys)


def test_other_tasks_and_a_missing_folder_are_one_line(tmp_path, capsys):
    assert main(["data", "unpack", "coco", "--from", str(tmp_path)]) == 2
    assert "data unpack knows only imagenet" in one_error_line(capsys)
    assert unpack(tmp_path / "nowhere", tmp_path / "data") == 2
    assert "no such folder" in one_error_line(capsys)
