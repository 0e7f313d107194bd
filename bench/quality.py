"""Quality: the pushed TFX model against the seed's strongest classical model, same rows.

    make bench-quality      (after `make`; reads build/metadata.sqlite)

The baseline (TF-IDF unigrams+bigrams, one-vs-rest logistic regression, decisions at 0.5
as the seed made them) is trained on exactly the examples the pipeline trained on (the
ExampleGen `train` split behind the pushed model, every span it read) and both are
scored on the `test` split, which neither saw. One table, side by side, with DESIGN.md's
reference figures.
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, roc_auc_score
from sklearn.multiclass import OneVsRestClassifier

from modules import features
from modules.stopwords import ENGLISH
from pipeline import metadata, paths

# DESIGN.md: the seed baseline on a 24,000/6,000 split of this kind of data.
REFERENCE = {"accuracy": 0.34, "f1_micro": 0.64, "ap_macro": 0.50, "auc_macro": 0.91}
STOP = set(ENGLISH)


def text_prepare(text: str) -> str:
    """The seed's text_prepare, in Python, for the baseline."""
    text = re.sub(r"[/(){}\[\]\|@,;]", " ", text.lower())
    text = re.sub(r"[^0-9a-z #+_]", "", text)
    return " ".join(w for w in text.split() if w not in STOP)


def read_split(examples_uri: str, split: str) -> tuple[list[str], list[list[str]]]:
    titles, tags = [], []
    for path in sorted(Path(examples_uri, f"Split-{split}").glob("*.gz")):
        for record in tf.data.TFRecordDataset([str(path)], compression_type="GZIP"):
            ex = tf.train.Example.FromString(record.numpy())
            titles.append(ex.features.feature[features.TITLE].bytes_list.value[0].decode())
            tags.append([t.decode() for t in ex.features.feature[features.TAGS].bytes_list.value])
    return titles, tags


def multi_hot(tags: list[list[str]], names: list[str]) -> np.ndarray:
    index = {n: i for i, n in enumerate(names)}
    y = np.zeros((len(tags), len(names)), dtype=np.int32)
    for row, row_tags in enumerate(tags):
        for t in row_tags:
            if t in index:
                y[row, index[t]] = 1
    return y


def scores_table(y: np.ndarray, decisions: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    present = y.sum(axis=0) > 0  # AUC is undefined for a tag absent from the test rows
    return {
        "accuracy": accuracy_score(y, decisions),
        "f1_micro": f1_score(y, decisions, average="micro", zero_division=0),
        "f1_weighted": f1_score(y, decisions, average="weighted", zero_division=0),
        "f1_macro": f1_score(y, decisions, average="macro", zero_division=0),
        "ap_macro": average_precision_score(y[:, present], scores[:, present], average="macro"),
        "auc_macro": roc_auc_score(y[:, present], scores[:, present], average="macro"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--metadata", type=Path, default=paths.metadata_path())
    args = parser.parse_args()
    found = metadata.lineage(metadata.sqlite_store(str(args.metadata)))
    spans = found["data_spans"]
    train_titles, train_tags = read_split(found["examples_uri"], "train")
    test_titles, test_tags = read_split(found["examples_uri"], "test")

    model = tf.saved_model.load(found["pushed_model"]["destination"])
    serve = model.signatures["serving_default"]
    out = serve(title=tf.constant(test_titles))
    names = [t.decode() for t in out[features.OUTPUT_TAGS].numpy()[0]]
    used = [i for i, n in enumerate(names) if n]
    names = [names[i] for i in used]
    tfx_scores = out[features.OUTPUT_SCORES].numpy()[:, used]
    threshold = float(out[features.OUTPUT_THRESHOLD].numpy()[0])
    y_test = multi_hot(test_tags, names)

    started = time.time()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=5, max_df=0.9, token_pattern=r"(\S+)")
    x_train = vectorizer.fit_transform(text_prepare(t) for t in train_titles)
    x_test = vectorizer.transform(text_prepare(t) for t in test_titles)
    baseline = OneVsRestClassifier(LogisticRegression(C=10.0, solver="liblinear"), n_jobs=2)
    baseline.fit(x_train, multi_hot(train_tags, names))
    base_scores = baseline.decision_function(x_test)
    base_decisions = baseline.predict(x_test)
    fit_seconds = time.time() - started

    tfx_row = scores_table(y_test, (tfx_scores >= threshold).astype(int), tfx_scores)
    base_row = scores_table(y_test, base_decisions, base_scores)

    print(
        f"pushed model {found['pushed_model']['version']}, "
        + ", ".join(f"span {s['span']} sha256 {s['sha256'][:12]}" for s in spans)
    )
    print(
        f"train rows {len(train_titles)}, test rows {len(test_titles)}, tags {len(names)}, "
        f"TFX threshold {threshold:.2f}, baseline fit {fit_seconds:.0f} s"
    )
    print(
        f"{'metric':<12} {'TFX model':>10} {'baseline':>10} {'diff':>8} {'DESIGN ref':>11}  beats"
    )
    for metric in tfx_row:
        ref = REFERENCE.get(metric)
        diff = tfx_row[metric] - base_row[metric]
        print(
            f"{metric:<12} {tfx_row[metric]:>10.4f} {base_row[metric]:>10.4f} {diff:>+8.4f} "
            f"{(f'{ref:.2f}' if ref else '-'):>11}  {'yes' if diff > 0 else 'NO'}"
        )


if __name__ == "__main__":
    main()
