"""Pictures of the fields: the report's gallery, `harness show`, and the smoke sweep's report (what `make demo`
writes) read in a real browser."""

from __future__ import annotations

import base64
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from analysis.report import build_report
from harness.job.predict import predict_job
from harness.store.folders import load_plan
from tests import browser
from tests.helpers import TINY, cli, harness, results, write_sweep

pytestmark = pytest.mark.slow
PICTURED = {**TINY, "name": "pictured", "matrix": {"downstream.n_train": [8, 16], "init": ["pretrained", "scratch"]}}
STEPS = {"pretrain": {"train": {"steps": 8, "epochs": 1}}, "train": {"steps": 6, "epochs": 1}}


@pytest.fixture(scope="module")
def pictured(tmp_path_factory: pytest.TempPathFactory):
    """The sweep run on two local workers and its report: (results root, report result)."""
    folder = tmp_path_factory.mktemp("pictured")
    root = folder / "results"
    cli(root, "expand", str(write_sweep(folder, PICTURED, **STEPS)))
    harness(root, "submit", "--workers", "2")
    return root, build_report(root / "pictured", n_boot=20)


@pytest.fixture(scope="module")
def smoke_report(smoke_results: Path):
    """The report of sweeps/smoke.yaml as `harness report` writes it (default bootstrap) after `make demo`'s run."""
    return build_report(smoke_results / "smoke")


def _real_image(png: Path) -> np.ndarray:
    image = imread(png)
    assert image.shape[0] > 300 and image.shape[1] > 300 and image[..., :3].std() > 0.05
    return image


def test_the_report_shows_predicted_and_true_fields(pictured) -> None:
    _, report = pictured
    assert report.gallery_skipped == {}
    image = _real_image(report.figures["gallery_poisson_id"])
    assert image.shape[1] > image.shape[0]  # source, truth and four models side by side, over their errors
    html = report.html.read_text()
    assert "Gallery: predicted and true fields" in html and "alt='gallery_poisson_id'" in html
    assert "href='#s" in html  # the table of contents
    assert "(gallery_poisson_id.png)" in report.markdown.read_text()


def test_show_draws_a_jobs_prediction_which_scores_as_its_summary(pictured, tmp_path: Path) -> None:
    root, _ = pictured
    table = results(root, "pictured")
    job = table[table["stage"] == "finetune"].iloc[0]
    out = tmp_path / "fields.png"
    assert f"wrote {out}" in cli(root, "show", job["id"], "--out", str(out))
    _real_image(out)
    plan = {j["id"]: j for j in load_plan(root / "pictured")}
    every = predict_job(plan[job["id"]], root, samples=TINY["base"]["downstream"]["n_test"])
    errors = [np.linalg.norm(p - t) / np.linalg.norm(t) for p, t in zip(every.prediction, every.truth, strict=True)]
    assert np.mean(errors) == pytest.approx(job["test_rel_l2"], rel=1e-4)  # the very model the job tested


def test_a_sweep_copied_without_checkpoints_says_why_it_has_no_gallery(pictured, tmp_path: Path) -> None:
    root, _ = pictured
    copy = tmp_path / "results"
    shutil.copytree(root / "pictured", copy / "pictured", ignore=shutil.ignore_patterns("ckpt", "report"))
    report = build_report(copy / "pictured", n_boot=20)
    (why,) = report.gallery_skipped.values()
    assert "ckpt/best.pt is absent" in why and "gallery_poisson_id" not in report.figures
    assert "Skipped <b>gallery_poisson_id</b>" in report.html.read_text()


needs_chromium = pytest.mark.skipif(
    browser.chromium() is None and not os.environ.get("CI"),
    reason="no chromium on PATH: apt-get install chromium (.ci/run installs it; in CI this test never skips)")


def test_the_smoke_report_shows_the_gallery_of_each_shift(smoke_report) -> None:
    assert smoke_report.gallery_skipped == {}
    html = smoke_report.html.read_text()
    for shift in ("id", "large"):
        image = _real_image(smoke_report.figures[f"gallery_poisson_{shift}"])
        assert image.shape[1] > image.shape[0] and f"alt='gallery_poisson_{shift}'" in html


@needs_chromium
def test_the_smoke_report_reads_well_in_a_browser(smoke_report) -> None:
    pngs = len(list(smoke_report.out_dir.glob("*.png")))
    assert pngs == len(smoke_report.figures) >= 3
    assert browser.problems(smoke_report.html, pngs) == []


@needs_chromium
@pytest.mark.parametrize("breakage", ["image removed", "image corrupted"])
def test_the_browser_check_fails_on_a_broken_report(smoke_report, tmp_path: Path, breakage: str) -> None:
    html = smoke_report.html.read_text()
    figure = re.search(r"<figure><img alt='gallery_poisson_id'.*?</figure>", html)
    if breakage == "image removed":
        broken = html.replace(figure.group(0), "")
    else:
        data = re.search(r"base64,([^']+)'", figure.group(0)).group(1)
        broken = html.replace(data, base64.b64encode(b"not a png").decode())
    page = tmp_path / "report.html"
    page.write_text(broken)
    found = browser.problems(page, len(smoke_report.figures))
    expected = "images on the page, expected" if breakage == "image removed" else "'gallery_poisson_id' did not"
    assert any(expected in problem for problem in found), found
