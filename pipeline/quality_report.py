"""How good is the model, and where is it weak?  python -m pipeline.quality_report

    python -m pipeline.quality_report [--model pushed|last] [--metadata PATH] [--png PATH]

For the latest pushed model (default) or the last run's model, from its Evaluator result
in ML Metadata: the headline metrics against the latest blessed model it was compared
with, the ten weakest tags with their support, and the metrics by slice (title length in
words, number of true tags), all on the test split. Draws a PNG with per-tag F1 against
support and quality by slice (default: build/quality_report.png).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from contract import paths
from pipeline import evaluation, metadata

HEADLINE = (
    ("F1 micro", "micro_f1_score"),
    ("exact match", "exact_match"),
    ("AP micro", "micro_auc_precision_recall"),
    ("ROC AUC micro", "micro_auc"),
    ("precision micro", "micro_precision"),
    ("recall micro", "micro_recall"),
)
WEAKEST = 10


def find(store, which: str) -> tuple[str, str, str]:
    """(what, evaluation uri, model uri) of the pushed model or of the last run's model."""
    if which == "pushed":
        found = metadata.lineage(store)
        version = found["pushed_model"]["version"]
        return (
            f"pushed version {version}",
            found["evaluation"]["uri"],
            found["trainer_run"]["model_uri"],
        )
    evaluations = store.get_artifacts_by_type("ModelEvaluation")
    if not evaluations:
        raise LookupError("no run has evaluated a model yet")
    newest = max(evaluations, key=lambda a: a.id)
    evaluator = metadata.producer(store, newest.id)
    model = metadata.artifacts_of(store, evaluator.id, metadata.Event.INPUT)["model"][0]
    return "the last run's model", newest.uri, model.uri


def tag_names(model_uri: str) -> list[str]:
    assets = Path(model_uri, "Format-Serving", "assets", "tags")
    return assets.read_text().splitlines() if assets.exists() else []


def _slice_order(item: tuple[str, dict]) -> tuple:
    """By feature, then by the number the value starts with ("5-8 words" before "13+")."""
    feature, _, value = item[0].partition("=")
    digits = re.match(r"\d+", value)
    return feature, int(digits[0]) if digits else 0, value


def report(what: str, metrics: list[evaluation.Metric], names: list[str]) -> tuple[str, dict]:
    """The printed report, and the per-tag and per-slice tables the plot draws."""
    new, old = evaluation.overall(metrics), evaluation.overall(metrics, evaluation.BASELINE)
    examples = int(new.get("example_count", 0))
    lines = [f"{what}: {examples} test titles", ""]
    lines.append(f"{'metric':<16} {'this model':>10} {'last blessed':>12} {'change':>8}")
    for label, key in HEADLINE:
        if key not in new:
            continue
        before = old.get(key)
        change = f"{new[key] - before:+8.4f}" if before is not None else f"{'-':>8}"
        shown = f"{before:.4f}" if before is not None else "none"
        lines.append(f"{label:<16} {new[key]:>10.4f} {shown:>12} {change}")

    tags = []
    for index, values in evaluation.per_tag(metrics).items():
        if index < len(names) and "mean_label" in values:
            support = round(values["mean_label"] * examples)
            tags.append(
                (
                    names[index],
                    support,
                    values.get("precision", 0.0),
                    values.get("recall", 0.0),
                    values.get("f1_score", 0.0),
                )
            )
    tags.sort(key=lambda t: (t[4], -t[1]))
    lines += ["", f"the {WEAKEST} weakest tags (of {len(tags)}), by F1 on the test split"]
    lines.append(f"{'tag':<22} {'support':>7} {'precision':>9} {'recall':>7} {'F1':>7}")
    for name, support, precision, recall, f1 in tags[:WEAKEST]:
        # TFMA's precision is NaN for a tag the model never predicted.
        shown = f"{precision:>9.3f}" if precision == precision else f"{'-':>9}"
        lines.append(f"{name:<22} {support:>7} {shown} {recall:>7.3f} {f1:>7.3f}")

    by_slice = dict(sorted(evaluation.slices(metrics).items(), key=_slice_order))
    lines += ["", "by slice"]
    lines.append(f"{'slice':<26} {'titles':>6} {'F1 micro':>8} {'exact':>7} {'AP micro':>8}")
    for name, values in by_slice.items():
        lines.append(
            f"{name:<26} {int(values.get('example_count', 0)):>6} "
            f"{values.get('micro_f1_score', 0):>8.4f} {values.get('exact_match', 0):>7.4f} "
            f"{values.get('micro_auc_precision_recall', 0):>8.4f}"
        )
    return "\n".join(lines), {"tags": tags, "slices": by_slice}


def draw(tables: dict, title: str, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    tags = tables["tags"]
    left.scatter([t[1] for t in tags], [t[4] for t in tags], s=14, alpha=0.7)
    for i, (name, support, *_, f1) in enumerate(tags[:WEAKEST]):  # weakest first
        left.annotate(
            name, (support, f1), fontsize=7, xytext=(4, 4 + 8 * (i % 5)), textcoords="offset points"
        )
    left.set_xscale("symlog", linthresh=10)
    left.set_xlabel("support (test titles with the tag)")
    left.set_ylabel("F1")
    left.set_title("per-tag F1 against support")
    left.grid(alpha=0.3)

    names = list(tables["slices"])
    x = range(len(names))
    for offset, (key, label) in enumerate(
        (("micro_f1_score", "F1 micro"), ("exact_match", "exact match"))
    ):
        values = [tables["slices"][n].get(key, 0) for n in names]
        right.bar([i + offset * 0.4 for i in x], values, width=0.4, label=label)
    right.set_xticks([i + 0.2 for i in x], names, rotation=30, ha="right", fontsize=8)
    right.set_title("quality by slice")
    right.legend()
    right.grid(alpha=0.3, axis="y")
    figure.suptitle(title)
    figure.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=("pushed", "last"), default="pushed")
    parser.add_argument("--metadata", type=Path, default=paths.metadata_path())
    parser.add_argument("--png", type=Path, default=paths.build_dir() / "quality_report.png")
    args = parser.parse_args(argv)
    if not args.metadata.exists():
        print(f"quality_report: error: no ML Metadata store at {args.metadata}", file=sys.stderr)
        return 1
    store = metadata.sqlite_store(str(args.metadata))
    try:
        what, evaluation_uri, model_uri = find(store, args.model)
    except LookupError as e:
        print(f"quality_report: error: {e}", file=sys.stderr)
        return 1
    text, tables = report(what, evaluation.load(evaluation_uri), tag_names(model_uri))
    print(text)
    draw(tables, what, args.png)
    print(f"\nplot: {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
