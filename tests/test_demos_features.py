"""RICES features: one per unique image, L2-normalised fp32, cached per split and per image, never stale."""

import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from flamingo_eval.data.sample import Sample
from flamingo_eval.demos import features as features_mod
from flamingo_eval.demos.encoder import ClipEncoder
from flamingo_eval.demos.features import image_features, image_table, sample_features, split_cache_path
from flamingo_eval.errors import BadImageError, ConfigError, WeightsError
from flamingo_eval.prompt import Image
from tests.conftest import TINY_CLIP


class CountingEncoder:
    """A stand-in for CLIP: a feature derived from the image bytes, and a log of what it encoded."""

    def __init__(self, name="fake", pretrained="v1", dim=8):
        self.name, self.pretrained, self.dim = name, pretrained, dim
        self.encoded: list[str] = []

    @property
    def identity(self):
        return f"{self.name}|{self.pretrained}|{self.dim}"

    def encode_batches(self, images):
        for start in range(0, len(images), 2):
            batch = []
            for im in images[start : start + 2]:
                self.encoded.append(im.key)
                data = open(im.path, "rb").read() if im.path else im.pil.tobytes()
                seed = int.from_bytes(hashlib.sha256(data).digest()[:8], "little")
                v = np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
                batch.append(v / np.linalg.norm(v))
            yield np.stack(batch)


def write_image(path, color, size=(40, 30)):
    PILImage.new("RGB", size, color).save(path)
    return path


@pytest.fixture
def split(tmp_path):
    """Five questions over three image files; q1/q2 share an image, as VQA questions do."""
    paths = [write_image(tmp_path / f"img{i}.png", (60 * i, 10, 200 - 50 * i)) for i in range(3)]
    imgs = [Image(key=f"coco/train2014/img{i}.png", path=str(p)) for i, p in enumerate(paths)]
    return [
        Sample(id="q0", image=imgs[0]),
        Sample(id="q1", image=imgs[1]),
        Sample(id="q2", image=imgs[1]),
        Sample(id="q3", image=imgs[2]),
        Sample(id="q4", image=imgs[0]),
    ]


def test_image_table_keeps_first_appearance_order_and_maps_each_sample():
    imgs = [Image(key=k, path=f"/x/{k}") for k in "bab"]
    table = image_table(
        [Sample(id=str(i), image=im) for i, im in enumerate(imgs)] + [Sample("c", Image("c"))]
    )
    assert table.keys == ["b", "a", "c"]
    assert table.rows.tolist() == [0, 1, 0, 2]


def test_each_unique_image_is_encoded_once(split):
    enc = CountingEncoder()
    feats = sample_features(split, "fp-1", enc)
    assert sorted(enc.encoded) == sorted({s.image.key for s in split})
    assert feats.shape == (5, 8) and feats.dtype == np.float32
    np.testing.assert_array_equal(feats[1], feats[2])  # questions sharing an image share its feature
    np.testing.assert_array_equal(feats[0], feats[4])


def test_second_call_reuses_the_cache_without_calling_the_encoder(split):
    first = image_features(image_table(split), "fp-1", CountingEncoder())
    again = CountingEncoder()
    np.testing.assert_array_equal(image_features(image_table(split), "fp-1", again), first)
    assert again.encoded == []
    assert split_cache_path(again, "fp-1").is_file()


def test_a_changed_data_fingerprint_does_not_reuse_the_split_matrix(split, monkeypatch):
    image_features(image_table(split), "fp-1", CountingEncoder())
    loaded = []
    real_load = features_mod._load_split
    monkeypatch.setattr(features_mod, "_load_split", lambda p, h: loaded.append(p) or real_load(p, h))
    enc = CountingEncoder()
    image_features(image_table(split[:4]), "fp-2", enc)
    assert loaded == [split_cache_path(enc, "fp-2")]
    assert split_cache_path(enc, "fp-2") != split_cache_path(enc, "fp-1")
    # same image files: their features come from the per-image layer, not from the encoder
    assert enc.encoded == []


def test_a_changed_image_file_is_recomputed_even_under_the_same_fingerprint(split):
    before = image_features(image_table(split), "fp-1", CountingEncoder())
    write_image(split[3].image.path, (1, 2, 3), size=(41, 30))  # new pixels, new size
    enc = CountingEncoder()
    after = image_features(image_table(split), "fp-1", enc)
    assert enc.encoded == [split[3].image.key]
    np.testing.assert_array_equal(after[:2], before[:2])
    assert not np.allclose(after[2], before[2])


def test_a_changed_encoder_never_reuses_features(split):
    image_features(image_table(split), "fp-1", CountingEncoder(pretrained="v1"))
    other = CountingEncoder(pretrained="v2")
    image_features(image_table(split), "fp-1", other)
    assert len(other.encoded) == 3


def test_tasks_sharing_images_compute_them_once(split, tmp_path):
    """VQAv2 and OK-VQA both ask about COCO train2014: the second task's split reuses the first's images."""
    image_features(image_table(split), "vqav2-train", CountingEncoder())
    extra = Image(key="coco/train2014/new.png", path=str(write_image(tmp_path / "new.png", "red")))
    okvqa = [Sample(id="ok1", image=split[3].image), Sample(id="ok2", image=extra)]
    enc = CountingEncoder()
    image_features(image_table(okvqa), "okvqa-train", enc)
    assert enc.encoded == ["coco/train2014/new.png"]


def test_finished_shards_survive_an_interrupted_run(split, monkeypatch):
    monkeypatch.setattr(features_mod, "FLUSH_EVERY", 2)

    class Interrupted(CountingEncoder):
        def encode_batches(self, images):
            gen = super().encode_batches(images)
            yield next(gen)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        image_features(image_table(split), "fp-1", Interrupted())
    enc = CountingEncoder()
    image_features(image_table(split), "fp-1", enc)
    assert len(enc.encoded) == 1  # two of three images were stored before the interruption


def test_a_missing_image_file_is_a_bad_image_error(split, tmp_path):
    gone = Sample(id="q9", image=Image(key="coco/x.png", path=str(tmp_path / "gone.png")))
    with pytest.raises(BadImageError, match="gone.png: file not found"):
        image_features(image_table([*split, gone]), "fp-1", CountingEncoder())


def test_in_memory_images_are_keyed_by_their_pixels():
    a = Sample(id="a", image=Image(key="hf/1", pil=PILImage.new("RGB", (8, 8), "red")))
    image_features(image_table([a]), None, CountingEncoder())
    enc = CountingEncoder()
    b = Sample(id="a", image=Image(key="hf/1", pil=PILImage.new("RGB", (8, 8), "blue")))
    image_features(image_table([b]), None, enc)
    assert enc.encoded == ["hf/1"]


# ---- the real open_clip encoder, tiny and randomly initialised -----------------------------------------


def test_clip_features_are_unit_norm_fp32_and_deterministic(tiny_clip, split, capsys):
    images = [s.image for s in split[:4]]
    enc = ClipEncoder(tiny_clip, None, batch_size=3, num_workers=2)
    feats = np.concatenate(list(enc.encode_batches(images)))
    assert feats.shape == (4, 16) and feats.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(feats[1], feats[2])
    inline = np.concatenate(list(ClipEncoder(tiny_clip, None, num_workers=0).encode_batches(images)))
    np.testing.assert_allclose(inline, feats, atol=1e-6)
    assert "RICES features" in capsys.readouterr().err  # progress on stderr


def test_clip_features_are_the_pooled_projection_not_patch_tokens(tiny_clip, split):
    import open_clip

    enc = ClipEncoder(tiny_clip, None, num_workers=0)
    feats = np.concatenate(list(enc.encode_batches([split[0].image])))
    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms(tiny_clip)
    with torch.no_grad():
        want = model.eval().encode_image(preprocess(split[0].image.load())[None])
    np.testing.assert_allclose(feats, torch.nn.functional.normalize(want, dim=-1).numpy(), atol=1e-5)


def test_a_corrupt_image_raises_the_bad_image_error(tiny_clip, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    enc = ClipEncoder(tiny_clip, None, num_workers=2)
    with pytest.raises(BadImageError, match="bad.jpg: cannot decode"):
        list(enc.encode_batches([Image(key="k", path=str(bad))]))


def test_identity_follows_name_weights_file_and_its_content(tiny_clip, tmp_path):
    import open_clip

    weights = tmp_path / "w.pt"
    torch.save(open_clip.create_model(tiny_clip).state_dict(), weights)
    by_file = ClipEncoder(tiny_clip, str(weights)).identity
    assert by_file != ClipEncoder(tiny_clip, None).identity
    openai = ClipEncoder("ViT-L-14", "openai").identity
    assert openai != ClipEncoder("ViT-B-32", "openai").identity
    assert openai != ClipEncoder("ViT-L-14", "laion2b_s32b_b82k").identity
    torch.save(open_clip.create_model(tiny_clip).state_dict(), weights)  # new random weights, same path
    assert ClipEncoder(tiny_clip, str(weights)).identity != by_file


def test_local_weights_file_and_local_dir_give_that_model(tiny_clip, tmp_path, split):
    import open_clip
    from safetensors.torch import save_file

    model = open_clip.create_model(tiny_clip)
    torch.save(model.state_dict(), tmp_path / "w.pt")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CLIP}))
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()},
        tmp_path / "dir" / "open_clip_model.safetensors",
    )
    images = [split[0].image]
    by_file = next(ClipEncoder(tiny_clip, str(tmp_path / "w.pt"), num_workers=0).encode_batches(images))
    by_dir = next(ClipEncoder(f"local-dir:{tmp_path / 'dir'}", None, num_workers=0).encode_batches(images))
    np.testing.assert_allclose(by_file, by_dir, atol=1e-6)
    random_init = next(ClipEncoder(tiny_clip, None, num_workers=0).encode_batches(images))
    assert not np.allclose(by_file, random_init)


def test_missing_weights_file_is_a_weights_error(tiny_clip, tmp_path):
    with pytest.raises(WeightsError, match="weights file not found: .*nowhere.bin"):
        ClipEncoder(tiny_clip, str(tmp_path / "nowhere.bin")).identity  # noqa: B018


def test_weights_of_another_architecture_are_a_weights_error(tiny_clip, tmp_path):
    torch.save({"visual.proj": torch.zeros(3, 3)}, tmp_path / "other.pt")
    with pytest.raises(WeightsError, match="do not match"):
        next(ClipEncoder(tiny_clip, str(tmp_path / "other.pt")).encode_batches([]))


def test_unknown_encoder_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown RICES encoder 'ViT-Q-99'"):
        ClipEncoder("ViT-Q-99", None).identity  # noqa: B018


def test_openai_weights_offline_say_where_to_put_a_local_file(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(WeightsError) as err:
        next(ClipEncoder("ViT-L-14", "openai").encode_batches([]))
    msg = str(err.value)
    assert "\n" not in msg
    assert "--rices-pretrained /path/to/open_clip_pytorch_model.bin" in msg
    assert "--rices-encoder ViT-L-14-quickgelu" in msg  # OpenAI weights need QuickGELU
    assert "timm/vit_large_patch14_clip_224.openai" in msg


def test_an_unknown_pretrained_tag_is_a_weights_error_listing_the_known_ones():
    with pytest.raises(WeightsError, match="no pretrained tag 'opnai' .*known: openai"):
        ClipEncoder("ViT-L-14", "opnai").identity  # noqa: B018


def test_a_local_dir_without_weights_is_a_weights_error(tmp_path):
    (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CLIP}))
    with pytest.raises(WeightsError, match="no weights file"):
        ClipEncoder(f"local-dir:{tmp_path}", None).identity  # noqa: B018
