"""The report's controls: per cell the baselines beside the score, a panel comparing the plain run with each
control run of the same cell, and outputs that copy a demonstration marked in the sample browser. The panel's
numbers are checked against the samples files; the browser part runs where Chromium is installed."""

import json
import os
from pathlib import Path

import pytest

from flamingo_eval.cli import main
from flamingo_eval.report.headless import Chromium, find_chromium
from flamingo_eval.toy import Sizes, generate

ROOT = Path(__file__).resolve().parent.parent
ARTEFACTS = ROOT / "results" / "runs" / "report-test"
VARIANTS = ("random", "random+demo-answers-shuffle", "random+demo-images-none", "random+demo-images-shuffle")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    base = tmp_path_factory.mktemp("controls-report")
    generate(base / "data", seed=3, sizes=Sizes(train=24, eval=24))
    assert main(["controls", "--model", "of-toy", "--task", "vqav2", "--shots", "4", "--num-samples", "10",
                 "--data-root", str(base / "data"), "--output-dir", str(base / "runs"), "--quiet"]) == 0
    assert main(["report", str(base / "runs" / "of-toy"), "--out", str(base / "report"), "--quiet"]) == 0
    return base


def _index(site):
    text = (site / "report" / "data" / "index.js").read_text()
    return json.loads(text[text.index(",") + 1: text.rindex(")")])


def _samples(site, variant):
    path = site / "runs" / "of-toy" / f"vqav2_4shot_{variant}.samples.jsonl"
    return {s["id"]: s for s in map(json.loads, path.read_text().splitlines())}


def test_the_controls_panel_compares_the_plain_run_with_each_control_from_the_samples(site):
    cells = _index(site)["cells"]
    plain = cells["of-toy__vqav2_4shot_random"]
    panel = plain["controls"]
    assert [r["selection"] for r in panel] == list(VARIANTS)
    base = _samples(site, "random")
    for row in panel[1:]:
        other = _samples(site, row["selection"])
        assert row["changed_answers"] == sum(base[i]["answer"] != other[i]["answer"] for i in base)
        assert row["changed_scores"] == sum(base[i]["score"] != other[i]["score"] for i in base)
        assert row["change"] == pytest.approx(row["score"] - plain["mean"]) and row["compared"] == len(base)
        assert cells[row["cell"]]["controls"] == panel  # each control's page shows the same panel
    result = json.loads((site / "runs" / "of-toy" / "vqav2_4shot_random.json").read_text())
    assert plain["baselines"] == result["baselines"]


@pytest.fixture(scope="module")
def browser():
    binary = find_chromium()
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no Chromium: .ci/run installs Debian's chromium (apt-get install -y chromium)")
        pytest.skip("no Chromium on this machine (apt-get install -y chromium); under CI=true this fails")
    with Chromium(binary, width=1400, height=1000) as b:
        yield b
    assert not b.errors, b.errors


PAGE = """({
  baselines: document.querySelector('p.baselines') ? document.querySelector('p.baselines').textContent : null,
  rows: [...document.querySelectorAll('.controls-panel tbody tr')].map(tr =>
    [...tr.querySelectorAll('td')].map(td => td.textContent)),
  copies: [...document.querySelectorAll('article.card')].map(c => [c.dataset.id,
    c.querySelector('.badge.copy') ? c.querySelector('.badge.copy').textContent : null,
    [...c.querySelectorAll('figure.demo')].findIndex(f => f.classList.contains('copied'))])})"""


def test_the_cell_page_shows_baselines_the_panel_and_copied_outputs(site, browser):
    url = (site / "report" / "index.html").resolve().as_uri() + "#/cell/of-toy__vqav2_4shot_random_demo-answers-shuffle?size=10"
    browser.open(url)
    browser.wait_for("document.querySelector('#main').dataset.ready === '1'")
    page = browser.evaluate(PAGE)
    result = json.loads((site / "runs" / "of-toy" / "vqav2_4shot_random+demo-answers-shuffle.json").read_text())
    assert page["baselines"].startswith(f"baselines majority {result['baselines']['majority']:.2f}")
    assert [r[0] for r in page["rows"]] == list(VARIANTS) and page["rows"][0][2] == "—"
    samples = _samples(site, "random+demo-answers-shuffle")
    for item_id, badge, marked in page["copies"]:
        copied = samples[item_id]["copied"]
        assert (badge, marked) == ((None, -1) if copied is None else (f"copies demonstration {copied + 1}", copied))
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    browser.wait_for("[...document.querySelectorAll('img')].every(i => i.complete)")
    path = browser.screenshot(ARTEFACTS / "report-controls.png")
    from PIL import Image

    with Image.open(path) as im:
        assert im.size[0] == 1400 and len(im.convert("RGB").getcolors(maxcolors=1_000_000)) > 100
