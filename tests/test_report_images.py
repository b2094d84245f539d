"""Image keys -> files -> thumbnails: resolved where the run read them (or --data-root), made once and cached,
missing or undecodable files counted and never fatal."""

import os

from PIL import Image

from flamingo_eval.report.images import THUMB_PX, ImageResolver, Thumbnails, default_url


def photo(path, size=(640, 480), color=(200, 30, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, "JPEG")
    return path


def test_a_key_resolves_under_data_root_first_then_where_the_run_read_it(tmp_path):
    key = "coco/train2014/a.jpg"
    recorded = photo(tmp_path / "run-data" / "images" / "a.jpg")
    resolver = ImageResolver({"coco/train2014": str(recorded.parent), "coco": str(tmp_path / "x")})
    assert resolver.resolve(key) == recorded  # the longest recorded prefix wins
    moved = photo(tmp_path / "moved" / key)
    assert ImageResolver({"coco/train2014": str(recorded.parent)}, tmp_path / "moved").resolve(key) == moved
    # --data-root without the file falls back to where the run read it
    assert ImageResolver({"coco/train2014": str(recorded.parent)}, tmp_path / "empty").resolve(key) == recorded
    assert ImageResolver(None, tmp_path / "moved").resolve(key) == moved
    assert ImageResolver({"coco/train2014": str(tmp_path / "gone")}).resolve(key) is None


def test_results_without_data_paths_read_images_from_the_default_data_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    photo(tmp_path / "data" / "vizwiz/val/b.jpg")
    assert ImageResolver(None).resolve("vizwiz/val/b.jpg").resolve() == tmp_path / "data" / "vizwiz/val/b.jpg"


def test_thumbnails_are_small_jpegs_at_a_url_the_page_derives_from_the_key(tmp_path):
    src = photo(tmp_path / "d" / "coco/val2014/q.jpg", size=(640, 480))
    thumbs = Thumbnails(tmp_path / "out")
    url = thumbs.ref("coco/val2014/q.jpg", ImageResolver(None, tmp_path / "d"))
    assert url == default_url("coco/val2014/q.jpg") == "thumbs/coco/val2014/q.jpg"
    stats = thumbs.make(progress=False)
    assert (stats.images, stats.made, stats.missing, stats.failed) == (1, 1, 0, 0)
    with Image.open(tmp_path / "out" / url) as im:
        assert im.format == "JPEG" and im.size == (THUMB_PX, THUMB_PX * 3 // 4)
    assert (tmp_path / "out" / url).stat().st_size < src.stat().st_size
    assert default_url("hateful_memes/img/01.png") == "thumbs/hateful_memes/img/01.png.jpg"
    assert default_url("../etc/passwd") is None and default_url("/abs/x.jpg") is None


def test_thumbnails_are_made_once_and_reused_by_the_next_report(tmp_path):
    resolver = ImageResolver(None, tmp_path / "d")
    keys = [f"coco/train2014/{i}.jpg" for i in range(5)]
    for k in keys:
        photo(tmp_path / "d" / k)
    first = Thumbnails(tmp_path / "r1", cache=tmp_path / "cache")
    for k in keys:
        first.ref(k, resolver)
    assert first.make(progress=False).made == 5
    again = Thumbnails(tmp_path / "r1", cache=tmp_path / "cache")  # the same report rewritten
    other = Thumbnails(tmp_path / "r2", cache=tmp_path / "cache")  # another report of the same images
    for t in (again, other):
        for k in keys:
            t.ref(k, resolver)
        stats = t.make(progress=False)
        assert (stats.made, stats.reused) == (0, 5)
    assert (tmp_path / "r2" / "thumbs/coco/train2014/3.jpg").is_file()


def test_another_file_under_the_same_key_gets_its_own_thumbnail(tmp_path):
    """Two toy data sets (other seeds) reuse keys: a thumbnail must never show another data set's image."""
    key = "coco/train2014/1.jpg"
    photo(tmp_path / "a" / key, color=(255, 0, 0))
    photo(tmp_path / "b" / key, color=(0, 0, 255))
    thumbs = Thumbnails(tmp_path / "out", cache=tmp_path / "cache")
    ua = thumbs.ref(key, ImageResolver(None, tmp_path / "a"))
    ub = thumbs.ref(key, ImageResolver(None, tmp_path / "b"))
    assert ua != ub and ub.startswith("thumbs/_/")
    thumbs.make(progress=False)
    with Image.open(tmp_path / "out" / ua) as a, Image.open(tmp_path / "out" / ub) as b:
        assert a.getpixel((5, 5))[0] > 200 and b.getpixel((5, 5))[2] > 200


def test_missing_and_undecodable_images_are_counted_not_fatal(tmp_path):
    resolver = ImageResolver(None, tmp_path / "d")
    photo(tmp_path / "d" / "v/good.jpg")
    (tmp_path / "d" / "v/bad.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    thumbs = Thumbnails(tmp_path / "out", cache=tmp_path / "cache")
    assert thumbs.ref("v/missing.jpg", resolver) is None
    assert thumbs.ref("v/bad.jpg", resolver) == "thumbs/v/bad.jpg"
    thumbs.ref("v/good.jpg", resolver)
    stats = thumbs.make(progress=False)
    assert (stats.images, stats.missing, stats.failed, stats.made) == (3, 1, 1, 1)
    assert str(tmp_path / "d" / "v/missing.jpg") in stats.missing_examples[0]
    assert stats.failed_examples == [str(tmp_path / "d" / "v/bad.jpg")]
    assert not (tmp_path / "out" / "thumbs/v/bad.jpg").exists()


def test_link_images_points_at_the_originals_and_copies_nothing(tmp_path):
    src = photo(tmp_path / "d" / "v/a.jpg")
    thumbs = Thumbnails(tmp_path / "out", link=True, cache=tmp_path / "cache")
    assert thumbs.ref("v/a.jpg", ImageResolver(None, tmp_path / "d")) == src.resolve().as_uri()
    assert thumbs.make(progress=False).linked and not (tmp_path / "out" / "thumbs").exists()


def test_thumbnails_of_an_earlier_report_that_are_no_longer_shown_are_removed(tmp_path):
    resolver = ImageResolver(None, tmp_path / "d")
    for k in ("v/a.jpg", "v/b.jpg"):
        photo(tmp_path / "d" / k)
    first = Thumbnails(tmp_path / "out", cache=tmp_path / "cache")
    first.ref("v/a.jpg", resolver)
    first.ref("v/b.jpg", resolver)
    first.make(progress=False)
    second = Thumbnails(tmp_path / "out", cache=tmp_path / "cache")
    second.ref("v/b.jpg", resolver)
    second.make(progress=False)
    assert sorted(os.listdir(tmp_path / "out" / "thumbs" / "v")) == ["b.jpg"]
