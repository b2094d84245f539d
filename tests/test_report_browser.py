"""The report as a person sees it: headless Chromium (Debian's ``chromium``) opens the report of a small toy run
from disk and these tests read what the page shows: the leaderboard rows, the chart, a card's demonstrations
(images loaded), output and score against its samples line, filters and paging, the comparison view, the prompt
on demand, placeholders for missing images. A screenshot is written to results/runs/report-test/.

The run is the demo's own (``run_demo``: of-toy, VQAv2 at 0 and 4 shots, random and RICES) on 16 items, and the
report is made by the command the issue names: ``flamingo-eval report <run>/of-toy --out <dir>``.
Without Chromium the module is skipped, except under CI=true, where that is a failure.
"""

import contextlib
import io
import json
import os
import shutil
from pathlib import Path

import pytest

from flamingo_eval.cli import main
from flamingo_eval.report.headless import Chromium, find_chromium
from tests.helpers_results import write_result

ROOT = Path(__file__).resolve().parent.parent
ARTEFACTS = ROOT / "results" / "runs" / "report-test"
ITEMS = 16


@pytest.fixture(scope="module")
def chromium_binary():
    binary = find_chromium()
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no Chromium: .ci/run installs Debian's chromium (apt-get install -y chromium)")
        pytest.skip("no Chromium on this machine (apt-get install -y chromium); under CI=true this fails")
    return binary


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The toy demo at 16 items on VQAv2, then the report exactly as the issue's command writes it."""
    from flamingo_eval.toy.demo import run_demo

    base = tmp_path_factory.mktemp("report-demo")
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(printed):
        mp.setenv("FLAMINGO_EVAL_CACHE", str(base / "cache"))
        run_demo(base / "runs", base / "toy-data", tasks=("vqav2",), num_samples=ITEMS, progress=False)
        # the demo ends with its report and the path to open
        assert printed.getvalue().splitlines()[-1].endswith(f"open {(base / 'runs/report/index.html').resolve().as_uri()}")
        published = base / "published"  # a result of a model with published numbers, without samples
        write_result(published, "of-9b", "coco", 4, [88.0, 90.0])
        write_result(published, "of-9b", "coco", 8, [95.0])  # also quoted by the Idefics2 paper
        assert main(["report", str(base / "runs" / "of-toy"), str(published), "--out", str(base / "report"),
                     "--quiet"]) == 0
    return base


@pytest.fixture(scope="module")
def browser(chromium_binary):
    with Chromium(chromium_binary, width=1400, height=1000) as b:
        yield b
    assert not b.errors, b.errors


def samples(demo, stem):
    path = demo / "runs" / "of-toy" / f"{stem}.samples.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def result(demo, stem):
    return json.loads((demo / "runs" / "of-toy" / f"{stem}.json").read_text())


def show(browser, demo, hash_="", report=None):
    """Open the report at a view and wait until it has drawn everything it loads (a change of the hash alone
    redraws the page it is on: the marker tells the new drawing from the old)."""
    url = ((report or demo / "report") / "index.html").resolve().as_uri() + hash_
    browser.evaluate("document.querySelector('#main') && (document.querySelector('#main').dataset.ready = 'stale')")
    browser.open(url)
    browser.wait_for("document.querySelector('#main').dataset.ready === '1'")


def act(browser, js):
    """Do what a person does (a click, a typed search) and wait for the page to redraw."""
    browser.evaluate("document.querySelector('#main').dataset.ready = 'stale'")
    browser.evaluate(js)
    browser.wait_for("document.querySelector('#main').dataset.ready === '1'")


CARDS = """[...document.querySelectorAll('article.card')].map(c => ({
  id: c.dataset.id,
  demos: [...c.querySelectorAll('figure.demo')].map(f => ({
    id: f.querySelector('.demo-id').textContent.slice(1),
    text: f.querySelector('.demo-text').textContent,
    sim: f.querySelector('.sim') ? f.querySelector('.sim').textContent : null,
    img: f.querySelector('img') ? {w: f.querySelector('img').naturalWidth, done: f.querySelector('img').complete} : null,
    placeholder: f.querySelector('.placeholder') ? f.querySelector('.placeholder').textContent : null})),
  query: c.querySelector('.query-text').textContent,
  queryImg: c.querySelector('figure.query img') ? c.querySelector('figure.query img').naturalWidth : null,
  output: c.querySelector('dd.output').textContent,
  answer: c.querySelector('dd.answer').textContent,
  score: c.querySelector('dd.score').textContent}))"""


def shown(text, value, digits=2):
    """The page prints numbers with JavaScript's toFixed, which rounds halves up where Python rounds to even."""
    return abs(float(text) - value) <= 0.5 * 10 ** -digits + 1e-9


def cards(browser):
    browser.wait_for("[...document.querySelectorAll('article.card img')].every(i => i.complete)")
    return browser.evaluate(CARDS)


def test_the_leaderboard_lists_each_run_beside_the_published_numbers_and_sorts(browser, demo):
    show(browser, demo)
    rows = browser.evaluate("""[...document.querySelectorAll('table.leaderboard tbody tr')].map(
        tr => [...tr.querySelectorAll('td')].map(td => td.textContent))""")
    header = browser.evaluate("[...document.querySelectorAll('table.leaderboard th')].map(th => th.textContent)")
    col = {name: i for i, name in enumerate(header)}
    expected = {}
    for shots in (0, 4):
        for selection in ("random", "rices"):
            r = result(demo, f"vqav2_{shots}shot_{selection}")
            expected[("of-toy", "vqav2", str(shots), selection)] = (r["mean"], str(r["n"]))
    got = {tuple(row[col[k]] for k in ("model", "task", "shots", "selection")): row for row in rows}
    assert set(got) == {*expected, ("of-9b", "coco", "4", "random"), ("of-9b", "coco", "8", "random")}
    for key, (mean, n) in expected.items():
        assert shown(got[key][col["mean ± std"]], mean) and got[key][col["n"]] == n
    assert got[("of-9b", "coco", "4", "random")][col["mean ± std"]] == "89.00 ± 1.00"
    # published figures from results/reference/, as the leaderboard reads them (first source, then the others)
    eight = got[("of-9b", "coco", "8", "random")]
    assert (eight[col["published"]], eight[col["other sources"]]) == ("96.3 ± 0.1", "96.3 (idefics2-paper)")
    assert got[("of-9b", "coco", "4", "random")][col["other sources"]] == "—"
    of9b = next(row for row in rows if row[0] == "of-9b" and row[col["shots"]] == "4")
    assert of9b[col["published"]] == "89.0 ± 0.3" and of9b[col["samples"]] == "no samples"
    assert all(row[col["samples"]] == "browse" for row in rows if row[0] == "of-toy")

    browser.evaluate("[...document.querySelectorAll('th')].find(th => th.textContent === 'mean ± std').click()")
    means = browser.evaluate("[...document.querySelectorAll('table.leaderboard tbody tr')].map("
                             "tr => parseFloat(tr.children[5].textContent))")
    assert means == sorted(means)
    browser.evaluate("[...document.querySelectorAll('th')].find(th => th.textContent === 'mean ± std').click()")
    means = browser.evaluate("[...document.querySelectorAll('table.leaderboard tbody tr')].map("
                             "tr => parseFloat(tr.children[5].textContent))")
    assert means == sorted(means, reverse=True)


def test_score_against_shots_is_a_chart_per_task_with_a_line_per_model_and_selection(browser, demo):
    show(browser, demo)
    charts = browser.evaluate("""[...document.querySelectorAll('figure.chart')].map(f => ({task: f.dataset.task,
        series: [...f.querySelectorAll('g.series')].map(g => [g.dataset.label, g.querySelectorAll('circle').length])}))""")
    by_task = {c["task"]: dict(c["series"]) for c in charts}
    assert by_task["vqav2"] == {"of-toy (random)": 2, "of-toy (rices)": 2}
    assert by_task["coco"] == {"of-9b (random)": 2 + 2}  # its points and the published ones
    browser.evaluate("document.querySelector('details.png').open = true")
    browser.wait_for("document.querySelector('details.png img') && document.querySelector('details.png img').complete")
    assert browser.evaluate("document.querySelector('details.png img').naturalWidth") > 400
    assert (demo / "report" / "shots.png").stat().st_size > 1000


def test_a_card_shows_the_demonstrations_output_and_score_of_its_samples_line(browser, demo):
    lines = samples(demo, "vqav2_4shot_rices")
    line = lines[len(lines) // 2]
    show(browser, demo, f"#/cell/of-toy__vqav2_4shot_rices?q={line['id']}")
    [card] = cards(browser)
    assert card["id"] == line["id"]
    assert [d["id"] for d in card["demos"]] == line["demos"]  # the same demonstrations, in prompt order
    assert [d["text"] for d in card["demos"]] == [c["text"] for c in line["chunks"][:-1]]
    assert [d["sim"] for d in card["demos"]] == [f"similarity {s:.3f}" for s in line["similarities"]]
    assert all(d["img"]["done"] and d["img"]["w"] > 0 for d in card["demos"])  # thumbnails loaded
    assert card["queryImg"] > 0 and card["query"] == line["chunks"][-1]["text"]
    assert (card["output"], card["answer"]) == (line["output"], line["answer"])
    assert shown(card["score"], line["score"])


def test_zero_shot_demonstrations_show_as_text_only(browser, demo):
    line = samples(demo, "vqav2_0shot_random")[0]
    show(browser, demo, f"#/cell/of-toy__vqav2_0shot_random?q={line['id']}")
    [card] = cards(browser)
    assert [d["placeholder"] for d in card["demos"]] == ["text only", "text only"]
    assert [d["id"] for d in card["demos"]] == line["demos"] and card["queryImg"] > 0


def test_filters_and_paging_choose_the_cards(browser, demo):
    cells = {stem: samples(demo, stem) for stem in ("vqav2_4shot_random", "vqav2_4shot_rices", "vqav2_0shot_random")}
    stem, lines = next((s, ls) for s, ls in cells.items() if 0 < sum(x["score"] == 0 for x in ls) < len(ls))
    ids = [x["id"] for x in lines]
    show(browser, demo, f"#/cell/of-toy__{stem}?size=10")
    assert [c["id"] for c in cards(browser)] == ids[:10]
    act(browser, "document.querySelector('button.next').click()")
    assert [c["id"] for c in cards(browser)] == ids[10:]

    act(browser, "document.querySelector('input[name=wrong]').click()")  # "wrong only"
    wrong = [x["id"] for x in lines if x["score"] == 0]
    assert [c["id"] for c in cards(browser)] == wrong[:10]
    assert all(c["score"] == "0.00" for c in cards(browser))
    act(browser, "document.querySelector('input[name=wrong]').click()")

    act(browser, "document.querySelector('input[name=min]').value = '50'; "
                 "document.querySelector('form.controls').requestSubmit()")
    assert [c["id"] for c in cards(browser)] == [x["id"] for x in lines if x["score"] >= 50][:10]

    target = next(x for x in lines[3:] if x["output"].strip())
    act(browser, "document.querySelector('input[name=min]').value = ''; "
                 f"document.querySelector('input[name=q]').value = {json.dumps(target['id'])}; "
                 "document.querySelector('form.controls').requestSubmit()")
    assert [c["id"] for c in cards(browser)] == [target["id"]]
    word = target["output"].strip().split()[0]
    act(browser, f"document.querySelector('input[name=q]').value = {json.dumps(word.upper())}; "
                 "document.querySelector('form.controls').requestSubmit()")
    found = [c["id"] for c in cards(browser)]
    assert target["id"] in found and len(found) <= len(lines)
    assert found == [x["id"] for x in lines if word.lower() in "\t".join(
        [x["id"], x["chunks"][-1]["text"], x["output"], x["answer"]]).lower()][:10]


def test_the_comparison_view_lists_the_items_whose_scores_differ(browser, demo):
    a = {x["id"]: x for x in samples(demo, "vqav2_4shot_random")}
    b = {x["id"]: x for x in samples(demo, "vqav2_4shot_rices")}
    differ = {i for i in a if a[i]["score"] != b[i]["score"]}
    assert differ, "the toy run gives random and RICES the same score everywhere"
    show(browser, demo, "#/compare?a=of-toy__vqav2_4shot_random&b=of-toy__vqav2_4shot_rices&size=50")
    pairs = browser.evaluate("""[...document.querySelectorAll('.pair')].map(p => ({id: p.dataset.id,
        a: p.querySelector('.side.a dd.score').textContent, b: p.querySelector('.side.b dd.score').textContent,
        demosA: [...p.querySelectorAll('.side.a .demo-id')].map(e => e.textContent.slice(1)),
        demosB: [...p.querySelectorAll('.side.b .demo-id')].map(e => e.textContent.slice(1))}))""")
    assert {p["id"] for p in pairs} == differ
    for p in pairs:
        assert shown(p["a"], a[p["id"]]["score"]) and shown(p["b"], b[p["id"]]["score"])
        assert (p["demosA"], p["demosB"]) == (a[p["id"]]["demos"], b[p["id"]]["demos"])
    status = browser.evaluate("document.querySelector('p.status').textContent")
    assert status.startswith(f"{len(differ)} item") and f"of {len(a)} in both" in status


@pytest.mark.parametrize("stem", ["vqav2_4shot_random", "vqav2_4shot_rices", "vqav2_0shot_random"])
def test_the_rendered_prompt_opens_on_demand(browser, demo, stem):
    line = samples(demo, stem)[5]
    show(browser, demo, f"#/cell/of-toy__{stem}?q={line['id']}")
    assert browser.evaluate("document.querySelector('pre.prompt').hidden")
    browser.evaluate("document.querySelector('button.show-prompt').click()")
    browser.wait_for("!document.querySelector('pre.prompt').hidden")
    assert browser.evaluate("document.querySelector('pre.prompt').textContent") == line["prompt"]


def test_missing_images_show_placeholders_and_are_counted(browser, demo, tmp_path):
    runs = tmp_path / "moved"
    shutil.copytree(demo / "runs" / "of-toy", runs, ignore=shutil.ignore_patterns("items"))
    for path in runs.glob("*.json"):  # the data is gone from where the run read it
        r = json.loads(path.read_text())
        r["data_paths"] = {k: str(tmp_path / "gone" / k) for k in r["data_paths"]}
        path.write_text(json.dumps(r))
    assert main(["report", str(runs / "vqav2_4shot_rices.json"), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    show(browser, demo, report=tmp_path / "r")
    notes = browser.evaluate("document.querySelector('ul.notes').textContent")
    assert "images not found" in notes and "--data-root" in notes
    show(browser, demo, "#/cell/of-toy__vqav2_4shot_rices?size=10", report=tmp_path / "r")
    [card, *_] = cards(browser)
    assert all(d["placeholder"] == "image missing" and d["img"] is None for d in card["demos"])
    # --data-root where the images now are brings them back
    data = demo / "toy-data"
    assert main(["report", str(runs / "vqav2_4shot_rices.json"), "--out", str(tmp_path / "r"), "--data-root",
                 str(data), "--quiet"]) == 0
    browser.open("about:blank")  # the same URL again would only move within the old document
    show(browser, demo, "#/cell/of-toy__vqav2_4shot_rices?size=10", report=tmp_path / "r")
    assert all(d["img"]["w"] > 0 for d in cards(browser)[0]["demos"])


def test_a_screenshot_of_the_sample_browser_and_the_comparison_is_written(browser, demo):
    from PIL import Image

    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    shots = {}
    for name, view in (("home", ""), ("cell", "#/cell/of-toy__vqav2_4shot_rices?size=10"),
                       ("compare", "#/compare?a=of-toy__vqav2_4shot_random&b=of-toy__vqav2_4shot_rices&size=10")):
        show(browser, demo, view)
        browser.wait_for("[...document.querySelectorAll('img')].every(i => i.complete)")
        shots[name] = browser.screenshot(ARTEFACTS / f"report-{name}.png")
    for path in shots.values():
        with Image.open(path) as im:
            assert im.size[0] == 1400 and im.size[1] >= 1000
            assert len(im.convert("RGB").getcolors(maxcolors=1_000_000)) > 100  # text, images, lines
