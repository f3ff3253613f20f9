"""The HTML report, opened in a real headless browser: every figure drawn, nothing fetched.

The browser is Debian's ``chromium``: found on the PATH, or installed with
``apt-get install chromium`` when the tests run as root (as README says).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stages.cli import main

BROWSERS = ("chromium", "chromium-browser", "google-chrome")

CHECK = """<script>
const violations = [];
document.addEventListener("securitypolicyviolation", (e) => violations.push(e.blockedURI));
window.addEventListener("load", () => {
  const figures = [...document.querySelectorAll(".figure svg")].map((svg) => {
    const box = svg.getBBox(), shown = svg.getBoundingClientRect();
    return {width: shown.width, height: shown.height, drawnWidth: box.width,
            drawnHeight: box.height, paths: svg.querySelectorAll("path, use").length};
  });
  const fetched = performance.getEntriesByType("resource").map((entry) => entry.name);
  document.body.setAttribute("data-check", JSON.stringify({figures, fetched, violations}));
});
</script>
"""
"""Measures, once the page has loaded, each inline figure as the browser laid it out and
drew it, and every resource the page asked for (blocked ones too)."""


@pytest.fixture(scope="session")
def browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"],
            check=False,
            capture_output=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            timeout=900,
        )
        found = shutil.which("chromium")
        if found:
            return found
    pytest.fail("no headless browser: apt-get install chromium (see README)")


def open_in_browser(browser: str, page: Path) -> dict[str, Any]:
    """Load ``page`` with the measuring script and return what it measured."""
    text = page.read_text(encoding="utf-8")
    # the page's own policy, with this one inline script allowed: a fetch is still refused
    # and reported
    text = text.replace("img-src data:", "img-src data:; script-src 'unsafe-inline'", 1)
    checked = page.with_name("checked.html")
    checked.write_text(text.replace("<head>", "<head>\n" + CHECK, 1), encoding="utf-8")
    done = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--window-size=1200,900",
            "--virtual-time-budget=10000",
            "--dump-dom",
            checked.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    found = re.search(r'data-check="([^"]*)"', done.stdout)
    assert found, f"the page did not load: {done.stderr[-2000:]}"
    measured: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return measured


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A run with weightings and scalings, its results JSON and its report."""
    folder = tmp_path_factory.mktemp("report")
    page, results = folder / "run.html", folder / "results.json"
    command = ["run", "wine", "--k", "1-15:2", "--weights", "uniform,distance"]
    command += ["--scale", "none,standard", "--quiet", "--top", "1"]
    assert main([*command, "--report", str(page), "--out", str(results)]) == 0
    return page, results


def test_every_figure_of_the_report_is_drawn_and_nothing_is_fetched(
    browser: str, tuned: tuple[Path, Path]
) -> None:
    page, _ = tuned
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"<script|<link|<iframe|(src|href)=\"(?!#|data:)", text)
    measured = open_in_browser(browser, page)
    assert len(measured["figures"]) == 4  # score against k, heat map, confusion, folds
    for figure in measured["figures"]:
        assert figure["width"] > 200 and figure["height"] > 150, figure
        assert figure["drawnWidth"] > 100 and figure["drawnHeight"] > 100, figure
        assert figure["paths"] > 20, figure
    assert measured["fetched"] == [] and measured["violations"] == []


def test_the_report_shows_the_best_candidate_its_confusion_matrix_and_the_command(
    tuned: tuple[Path, Path],
) -> None:
    page, results_file = tuned
    results = json.loads(results_file.read_text())
    text = page.read_text(encoding="utf-8")
    best = results["candidates"][0]
    params = best["params"]
    assert f"k={params['k']}, {params['metric']}, {params['weights']}" in text
    for name in results["dataset"]["classes"]:
        assert name in text
    rows = results["dataset"]["rows"]
    assert sum(map(sum, best["confusion_matrix"])) == rows  # every row tested once
    assert "python -m pipeline run wine --k 1-15:2 --weights uniform,distance" in text
    assert f"{best['mean_accuracy']:.4f}" in text


def test_a_report_from_a_results_file_is_the_runs_page_without_its_command(
    browser: str, tuned: tuple[Path, Path], tmp_path: Path
) -> None:
    _, results = tuned
    page = tmp_path / "again.html"
    assert main(["report", str(results), "--out", str(page)]) == 0
    measured = open_in_browser(browser, page)
    assert len(measured["figures"]) == 4 and measured["fetched"] == []
    text = page.read_text(encoding="utf-8")
    assert "python -m pipeline run wine --k 1,3,5,7,9,11,13,15" in text  # rebuilt


def test_a_file_that_is_not_results_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"candidates": [')
    assert main(["report", str(broken)]) == 2
    other = tmp_path / "other.json"
    other.write_text('{"kind": "run_started"}')
    assert main(["report", str(other)]) == 2
    assert main(["report", str(tmp_path / "absent.json")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith(f"error: {broken}:1:17: not JSON")
    assert lines[1] == (
        f"error: {other}: not a results JSON (no candidates); give one written by run --out"
    )
    assert "no such file" in lines[2] and len(lines) == 3
    assert not (tmp_path / "broken.html").exists()


def test_a_report_aimed_at_an_input_is_refused_before_the_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data.csv"
    data.write_text("a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(40)))
    before = data.read_bytes()
    assert main(["run", str(data), "--quiet", "--report", str(data)]) == 2
    assert "--report" in capsys.readouterr().err
    assert data.read_bytes() == before


def test_results_missing_what_the_report_draws_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for number, body in enumerate(
        [
            '{"candidates": [{"params": {}}]}',
            '{"candidates": [{"params": {"k": 1, "metric": "euclidean", "weights": "uniform"}}]}',
        ]
    ):
        results = tmp_path / f"partial{number}.json"
        results.write_text(body)
        assert main(["report", str(results)]) == 2
        error = capsys.readouterr().err.strip()
        assert error.startswith(f"error: {results}: not a results JSON (KeyError"), error
        assert "\n" not in error


@pytest.mark.parametrize(
    "given",
    [
        {"k": "1-5", "metrics": "euclidean,manhattan", "weights": "uniform,distance"},
        {"k": "2,7", "scale": "none,standard", "cv": "kfold:3", "seed": 4, "missing": "mean"},
        {"k": "3", "cv": "holdout:0.3", "precision": "float32", "scoring": "f1_macro"},
    ],
)
def test_the_reproducing_command_asks_for_the_same_search(given: dict[str, Any]) -> None:
    import asyncio
    import shlex
    from concurrent.futures import ThreadPoolExecutor

    from stages import Tuning
    from stages.cli import build_parser
    from stages.options import TuningOptions
    from stages.report import reproducing_command

    with ThreadPoolExecutor(2) as executor:
        result = asyncio.run(Tuning("wine", executor=executor, **given).run())
    results = json.loads(json.dumps(result.to_dict()))
    words = shlex.split(reproducing_command(results))
    assert words[:5] == ["python", "-m", "pipeline", "run", "wine"]
    args = build_parser().parse_args(words[3:])
    again = TuningOptions.of(
        k=args.k,
        metrics=args.metrics,
        weights=args.weights,
        scale=args.scale,
        cv=args.cv,
        scoring=args.scoring,
        seed=args.seed,
        missing=args.missing,
        precision=args.precision,
    )
    assert again.describe() == results["options"]
    assert args.scoring == results["scoring"]


def test_the_reproducing_command_leaves_out_splits_only_python_can_give() -> None:
    """``cv=[(train, test), ...]`` has no flag: the command must not offer ``--cv splits:N``,
    which the command line refuses."""
    import asyncio
    import shlex
    from concurrent.futures import ThreadPoolExecutor

    from stages import Tuning
    from stages.cli import build_parser
    from stages.report import reproducing_command

    rows = np.arange(178)
    splits = [(rows[rows % 3 != fold], rows[rows % 3 == fold]) for fold in range(3)]
    with ThreadPoolExecutor(2) as executor:
        result = asyncio.run(Tuning("wine", k="1,3", cv=splits, executor=executor).run())
    results = json.loads(json.dumps(result.to_dict()))
    assert results["options"]["cv"] == "splits:3"
    command = reproducing_command(results)
    assert command.endswith("  # and cv: 3 (train, test) splits given in Python")
    words = shlex.split(command, comments=True)
    assert "--cv" not in words
    assert build_parser().parse_args(words[3:]).k == "1,3"
