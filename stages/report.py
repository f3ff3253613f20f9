"""The tuning as one self-contained HTML page: figures, the best model's confusion matrix,
the options and the command that reproduces the run.

The page is built from the results JSON alone (what ``--out`` writes), so a
report can be made from a run long after it ended. Every figure is drawn by
matplotlib as SVG and placed inline: the page fetches nothing and opens
from disk, offline, in any browser. matplotlib is an optional extra
(``pip install 'knn-pipeline[report]'``) imported only here.
"""

from __future__ import annotations

import html
import io
import math
import os
import re
import shlex
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pipeline.errors import InputError
from pipeline.files import atomic_write_text

__all__ = ["FOLD_LINES", "TOP_FOLDS", "render_report", "reproducing_command", "write_report"]

TOP_FOLDS = 10
"""Candidates whose fold-by-fold scores the page draws."""

FOLD_LINES = 50
"""Most folds the fold-by-fold figure draws as points; more (leave-one-out) as a summary."""

TIMES = "\N{MULTIPLICATION SIGN}"

_SCORE_NAMES = {
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced accuracy",
    "f1_macro": "F1 (macro)",
    "f1_weighted": "F1 (weighted)",
    "precision_macro": "precision (macro)",
    "recall_macro": "recall (macro)",
    "roc_auc_ovr": "ROC AUC (one-vs-rest)",
    "neg_log_loss": "negative log loss",
}


def write_report(
    results: Mapping[str, Any], path: str | os.PathLike[str], *, command: str | None = None
) -> None:
    """Write the page for ``results`` (a results JSON object) to ``path``, atomically."""
    atomic_write_text(path, render_report(results, command=command))


def render_report(results: Mapping[str, Any], *, command: str | None = None) -> str:
    """The HTML page for ``results``; ``command`` is how the run was started (default:
    a command rebuilt from the results)."""
    plt = _pyplot()
    candidates = list(results.get("candidates") or [])
    if not candidates:
        raise InputError("the results hold no scored candidate, so there is nothing to report")
    scoring = str(results.get("scoring", "accuracy"))
    pooled = f"pooled_{scoring}" in candidates[0]
    sections = [
        _section(
            "Score against k", _figure(plt, _score_against_k(plt, candidates, scoring, pooled))
        ),
        _section(
            "Best score per metric and k",
            _figure(plt, _heat_map(plt, candidates, scoring, pooled)),
        ),
    ]
    best = candidates[0]
    classes = [str(c) for c in (results.get("dataset") or {}).get("classes", [])]
    matrix = best.get("confusion_matrix")
    if matrix is not None and classes:
        figure = _figure(plt, _confusion(plt, matrix, classes, _label(best["params"])))
        sections.append(_section("Confusion matrix of the best candidate", figure))
    else:
        sections.append(
            _section(
                "Confusion matrix of the best candidate",
                "<p>Not in these results (more than 100 classes, or an interrupted run).</p>",
            )
        )
    folds = [str(f.get("id", i)) for i, f in enumerate((results.get("cv") or {}).get("folds", []))]
    sections.append(
        _section(
            "Fold by fold: the top candidates",
            _figure(plt, _fold_scores(plt, candidates[:TOP_FOLDS], scoring, folds)),
        )
    )
    sections.append(_section("Leaderboard", _leaderboard(candidates[:TOP_FOLDS], scoring, pooled)))
    sections.append(
        _section("The run", _run_table(results, command or reproducing_command(results)))
    )
    title = f"k-NN tuning: {(results.get('dataset') or {}).get('source', 'data')}"
    return _PAGE.format(title=html.escape(title), body="\n".join(sections))


def reproducing_command(results: Mapping[str, Any]) -> str:
    """A ``python -m pipeline run`` command for the search these results hold (the data
    options a CSV needed, such as ``--label``, are not in the results).

    From the options the run recorded, as it was given; results without them (older
    files) have the command rebuilt from their candidates and folds.
    """
    options = results.get("options")
    if isinstance(options, Mapping) and {"k", "metrics", "weights", "cv"} <= set(options):
        return _command_of_options(results, options)
    candidates = list(results.get("candidates") or [])
    params = [c.get("params", {}) for c in candidates]
    cv = results.get("cv") or {}
    words = ["python", "-m", "pipeline", "run", str((results.get("dataset") or {}).get("source"))]
    ks = sorted({int(p["k"]) for p in params})
    words += ["--k", ",".join(str(k) for k in ks)]
    words += ["--metrics", ",".join(_unique(str(p["metric"]) for p in params))]
    words += ["--weights", ",".join(_unique(str(p["weights"]) for p in params))]
    scales = _unique(str(p["scale"]) for p in params if "scale" in p)
    if scales:
        words += ["--scale", ",".join(scales)]
    kind = cv.get("kind")
    if kind in ("kfold", "holdout") and "spec" in cv:
        words += ["--cv", str(cv["spec"])]
    elif kind == "kfold":
        words += ["--cv", f"kfold:{len(cv.get('folds', []))}"]
    elif kind == "loo":
        words += ["--cv", "loo"]
    if "seed" in cv:
        words += ["--seed", str(cv["seed"])]
    words += ["--scoring", str(results.get("scoring", "accuracy"))]
    if "precision" in results:
        words += ["--precision", str(results["precision"])]
    return shlex.join(words)


def _command_of_options(results: Mapping[str, Any], options: Mapping[str, Any]) -> str:
    words = ["python", "-m", "pipeline", "run", str((results.get("dataset") or {}).get("source"))]
    words += ["--k", ",".join(str(k) for k in options["k"])]
    words += ["--metrics", ",".join(str(m) for m in options["metrics"])]
    words += ["--weights", ",".join(str(w) for w in options["weights"])]
    if options.get("scales"):
        words += ["--scale", ",".join(str(s) for s in options["scales"])]
    splits = str(options["cv"]) if str(options["cv"]).startswith("splits:") else None
    if splits is None:
        words += ["--cv", str(options["cv"])]
    if options.get("seed") is not None:
        words += ["--seed", str(options["seed"])]
    if options.get("missing") not in (None, "error"):
        words += ["--missing", str(options["missing"])]
    words += ["--scoring", str(results.get("scoring", "accuracy"))]
    if "precision" in options:
        words += ["--precision", str(options["precision"])]
    if splits is not None:  # no flag gives them: say so rather than offer another search
        return shlex.join(words) + f"  # and cv: {splits[7:]} (train, test) splits given in Python"
    return shlex.join(words)


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise InputError(
            "the report needs matplotlib: pip install 'knn-pipeline[report]'"
        ) from None
    matplotlib.use("Agg", force=True)  # no display; the figures only become SVG
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "path", "figure.dpi": 96, "font.size": 9})
    return plt


def _unique(values: Iterator[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _label(params: Mapping[str, Any]) -> str:
    parts = [f"k={params['k']}", str(params["metric"]), str(params["weights"])]
    if "scale" in params:
        parts.append(f"scale {params['scale']}")
    return ", ".join(parts)


def _score(candidate: Mapping[str, Any], scoring: str, pooled: bool) -> float:
    value = candidate.get(f"pooled_{scoring}" if pooled else f"mean_{scoring}")
    return math.nan if value is None else float(value)


def _series(
    candidates: Sequence[Mapping[str, Any]],
) -> dict[tuple[str, ...], list[Mapping[str, Any]]]:
    """Candidates grouped by everything but ``k`` (metric, weighting, scaling), k ascending."""
    groups: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
    for candidate in candidates:
        p = candidate["params"]
        key = (str(p["metric"]), str(p["weights"]), str(p.get("scale", "")))
        groups.setdefault(key, []).append(candidate)
    for members in groups.values():
        members.sort(key=lambda c: int(c["params"]["k"]))
    return groups


def _series_label(key: tuple[str, ...], varies: Sequence[bool]) -> str:
    shown = [part for part, show in zip(key, varies, strict=True) if show and part]
    return ", ".join(shown) or key[0]


def _score_against_k(
    plt: Any, candidates: Sequence[Mapping[str, Any]], scoring: str, pooled: bool
) -> Any:
    groups = _series(candidates)
    varies = [len({key[i] for key in groups}) > 1 for i in range(3)]
    varies[0] = True
    figure, axes = plt.subplots(figsize=(10, 4.6))
    for key, members in groups.items():
        ks = [int(c["params"]["k"]) for c in members]
        means = [_score(c, scoring, pooled) for c in members]
        (line,) = axes.plot(ks, means, marker="o", markersize=3, label=_series_label(key, varies))
        if not pooled:
            stds = [float(c.get(f"std_{scoring}") or 0.0) for c in members]
            low = [m - s for m, s in zip(means, stds, strict=True)]
            high = [m + s for m, s in zip(means, stds, strict=True)]
            axes.fill_between(ks, low, high, color=line.get_color(), alpha=0.15, linewidth=0)
    axes.set_xlabel("k")
    axes.set_ylabel(
        _SCORE_NAMES.get(scoring, scoring) + ("" if pooled else " (mean ± std over folds)")
    )
    axes.grid(alpha=0.3)
    columns = 1 + len(groups) // 13
    axes.legend(fontsize=7, ncol=columns, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return figure


def _heat_map(plt: Any, candidates: Sequence[Mapping[str, Any]], scoring: str, pooled: bool) -> Any:
    rows: dict[str, dict[int, float]] = {}
    for candidate in candidates:
        p = candidate["params"]
        row = str(p["metric"]) + (f" {TIMES} {p['scale']}" if "scale" in p else "")
        k, score = int(p["k"]), _score(candidate, scoring, pooled)
        best = rows.setdefault(row, {}).get(k, -math.inf)
        if not math.isnan(score) and score > best:
            rows[row][k] = score
    ks = sorted({int(c["params"]["k"]) for c in candidates})
    names = list(rows)
    grid = [[rows[name].get(k, math.nan) for k in ks] for name in names]
    width = min(14.0, max(5.0, 0.32 * len(ks) + 2.5))
    figure, axes = plt.subplots(figsize=(width, 0.45 * len(names) + 1.6))
    image = axes.imshow(grid, aspect="auto", cmap="viridis")
    axes.set_yticks(range(len(names)), names)
    step = max(1, len(ks) // 20)
    axes.set_xticks(range(0, len(ks), step), [str(k) for k in ks[::step]])
    axes.set_xlabel("k (best over weightings)")
    figure.colorbar(image, ax=axes, label=_SCORE_NAMES.get(scoring, scoring))
    return figure


def _confusion(
    plt: Any, matrix: Sequence[Sequence[int]], classes: Sequence[str], title: str
) -> Any:
    size = len(classes)
    side = min(12.0, max(4.0, 0.45 * size + 2.5))
    figure, axes = plt.subplots(figsize=(side + 1.2, side))
    image = axes.imshow(matrix, cmap="Blues")
    names = [c if len(c) <= 18 else c[:17] + "…" for c in classes]
    axes.set_xticks(range(size), names, rotation=45, ha="right")
    axes.set_yticks(range(size), names)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(title)
    if size <= 20:
        top = max(max(row) for row in matrix) or 1
        for i, row in enumerate(matrix):
            for j, count in enumerate(row):
                colour = "white" if count > top / 2 else "black"
                axes.text(j, i, str(count), ha="center", va="center", color=colour, fontsize=8)
    figure.colorbar(image, ax=axes, label="test rows")
    return figure


def _fold_scores(
    plt: Any, top: Sequence[Mapping[str, Any]], scoring: str, folds: Sequence[str]
) -> Any:
    figure, axes = plt.subplots(figsize=(10, 4.2))
    name = _SCORE_NAMES.get(scoring, scoring)
    for candidate in top:
        values = [math.nan if v is None else float(v) for v in candidate.get(f"fold_{scoring}", [])]
        label = f"#{candidate['rank']} {_label(candidate['params'])}"
        if len(values) <= FOLD_LINES:
            axes.plot(range(len(values)), values, marker="o", markersize=4, label=label)
        else:  # leave-one-out: one point per row would be noise; its running mean
            running, total, count = [], 0.0, 0
            for value in values:
                if not math.isnan(value):
                    total, count = total + value, count + 1
                running.append(total / count if count else math.nan)
            axes.plot(range(len(values)), running, label=label)
    if folds and len(folds) <= FOLD_LINES:
        axes.set_xticks(range(len(folds)), folds)
        axes.set_xlabel("fold")
    else:
        axes.set_xlabel("fold (running mean over the folds so far)")
    axes.set_ylabel(name)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return figure


def _figure(plt: Any, figure: Any) -> str:
    """The figure as inline SVG (its XML prolog dropped), then closed."""
    buffer = io.StringIO()
    figure.tight_layout()
    figure.savefig(buffer, format="svg")
    plt.close(figure)
    svg = buffer.getvalue()
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg[svg.find("<svg") :], flags=re.DOTALL)
    return '<div class="figure">' + svg.rstrip() + "</div>"


def _section(title: str, body: str) -> str:
    return f"<section><h2>{html.escape(title)}</h2>\n{body}\n</section>"


def _leaderboard(top: Sequence[Mapping[str, Any]], scoring: str, pooled: bool) -> str:
    scales = any("scale" in c["params"] for c in top)
    head = ["rank", "k", "metric", "weights", *(["scale"] if scales else [])]
    head += [_SCORE_NAMES.get(scoring, scoring)] + ([] if pooled else ["± std"])
    rows = []
    for c in top:
        p = c["params"]
        cells = [
            c["rank"],
            p["k"],
            p["metric"],
            p["weights"],
            *([p.get("scale", "")] if scales else []),
        ]
        cells.append(_number(_score(c, scoring, pooled)))
        if not pooled:
            cells.append(_number(c.get(f"std_{scoring}")))
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in cells) + "</tr>")
    header = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"
    return f"<table>\n{header}\n" + "\n".join(rows) + "\n</table>"


def _number(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "undefined"
    return f"{float(value):.4f}"


def _run_table(results: Mapping[str, Any], command: str) -> str:
    dataset = results.get("dataset") or {}
    cv = results.get("cv") or {}
    timing = results.get("timing") or {}
    candidates = list(results.get("candidates") or [])
    params = [c["params"] for c in candidates]
    facts = [
        ("data", dataset.get("source")),
        (f"rows {TIMES} features", f"{dataset.get('rows')} {TIMES} {dataset.get('features')}"),
        ("classes", ", ".join(str(c) for c in dataset.get("classes", []))),
        ("folds", f"{cv.get('kind')} ({len(cv.get('folds', []))} folds, seed {cv.get('seed')})"),
        ("scoring", results.get("scoring", "accuracy")),
        ("k", ", ".join(str(k) for k in sorted({int(p["k"]) for p in params}))),
        ("metrics", ", ".join(_unique(str(p["metric"]) for p in params))),
        ("weights", ", ".join(_unique(str(p["weights"]) for p in params))),
        ("candidates", len(candidates)),
        ("precision", results.get("precision", "float64")),
        ("time", f"{float(timing.get('seconds', 0.0)):.2f} s on {timing.get('workers')} workers"),
    ]
    scales = _unique(str(p["scale"]) for p in params if "scale" in p)
    if scales:
        facts.insert(8, ("scalings", ", ".join(scales)))
    rows = "\n".join(
        f"<tr><th>{html.escape(name)}</th><td>{html.escape(str(value))}</td></tr>"
        for name, value in facts
    )
    return f"<table>\n{rows}\n</table>\n<p>Reproduce it:</p>\n<pre>{html.escape(command)}</pre>"


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }}
h1 {{ font-size: 1.5em; }} h2 {{ font-size: 1.15em; margin-top: 2em; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 0.2em 0.8em; text-align: left; }}
tr:nth-child(even) {{ background: #f4f4f4; }}
pre {{ background: #f4f4f4; padding: 0.6em; white-space: pre-wrap; }}
.figure svg {{ max-width: 100%; height: auto; }}
</style>
</head>
<body>
<h1>{title}</h1>
{body}
</body>
</html>
"""
