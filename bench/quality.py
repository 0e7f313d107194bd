"""Quality: the pushed TFX model against the baselines a careful engineer would try first.

    make bench-quality      (after `make`; reads build/metadata.sqlite)

Every baseline is trained on exactly the examples the pipeline trained on (the ExampleGen
`train` split behind the pushed model, every span it read). Its settings (C, penalty) and
its one global decision threshold are chosen on the `eval` split, with the model's own
at-least-one-tag rule (modules/threshold.py). Everything is scored on the `test` split,
which neither saw. One table: each baseline family at its chosen setting, the best
baseline per metric, the TFX model, and its lead.

The family: TF-IDF word 1-2 grams + char 2-5 grams (within word boundaries),
one-vs-rest logistic regression (L2 and L1 penalties, C on a grid) and a linear SVM.
The frozen-MiniLM rows of the family are bench/encoder.py's.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import tensorflow as tf
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, roc_auc_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.svm import LinearSVC

from contract import features, paths
from modules import encoder, threshold
from modules.stopwords import ENGLISH
from pipeline import metadata

STOP = set(ENGLISH)
METRICS = ("exact_match", "f1_micro", "f1_weighted", "f1_macro", "ap_macro", "auc_macro")
# Each family with the settings tried on the eval split.
FAMILIES = {
    "word+char TF-IDF, logistic regression L2": [
        (f"C={c:g}", lambda c=c: LogisticRegression(C=c, solver="liblinear")) for c in (1, 4, 16)
    ],
    "word+char TF-IDF, logistic regression L1": [
        (f"C={c:g}", lambda c=c: LogisticRegression(C=c, penalty="l1", solver="liblinear"))
        for c in (1, 4, 16)
    ],
    "word+char TF-IDF, linear SVM": [
        (f"C={c:g}", lambda c=c: LinearSVC(C=c)) for c in (0.03, 0.1, 0.3)
    ],
}


def text_prepare(text: str) -> str:
    """The seed's text_prepare, in Python, for the word n-grams."""
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
    present = y.sum(axis=0) > 0  # AP and AUC are undefined for a tag absent from the rows
    return {
        "exact_match": accuracy_score(y, decisions),
        "f1_micro": f1_score(y, decisions, average="micro", zero_division=0),
        "f1_weighted": f1_score(y, decisions, average="weighted", zero_division=0),
        "f1_macro": f1_score(y, decisions, average="macro", zero_division=0),
        "ap_macro": average_precision_score(y[:, present], scores[:, present], average="macro"),
        "auc_macro": roc_auc_score(y[:, present], scores[:, present], average="macro"),
    }


class Features:
    """Word 1-2 gram and char 2-5 gram TF-IDF, fitted on the training titles."""

    def __init__(self, titles: list[str]) -> None:
        self.words = TfidfVectorizer(
            ngram_range=(1, 2), min_df=2, sublinear_tf=True, token_pattern=r"(\S+)"
        )
        self.chars = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True, lowercase=True
        )
        self.words.fit(text_prepare(t) for t in titles)
        self.chars.fit(titles)

    def __call__(self, titles: list[str]) -> sp.csr_matrix:
        words = self.words.transform(text_prepare(t) for t in titles)
        return sp.hstack([words, self.chars.transform(titles)]).tocsr()


def baseline_scores(classifier, x) -> np.ndarray:
    """Scores in [0, 1] for the shared threshold grid: probabilities, or squashed margins
    (a monotone map, so ranking metrics are the margins' own)."""
    if hasattr(classifier, "predict_proba"):
        return classifier.predict_proba(x)
    return 1 / (1 + np.exp(-classifier.decision_function(x)))


@dataclasses.dataclass
class Pushed:
    """The pushed model, the splits it was trained and tested on, and its test answers."""

    found: dict  # metadata.lineage() of the pushed model
    split: dict[str, tuple[list[str], list[list[str]]]]  # split -> (titles, tags)
    saved_model: object  # tf.saved_model.load() of it
    used: list[int]  # output columns that name a tag (fewer tags than NUM_TAGS leave "")
    y: dict[str, np.ndarray]  # split -> multi-hot over every output column
    out: dict[str, tf.Tensor]  # serving_default's outputs on the test titles

    @property
    def signature(self):
        return self.saved_model.signatures["serving_default"]


def pushed(metadata_path: Path) -> Pushed:
    found = metadata.lineage(metadata.sqlite_store(str(metadata_path)))
    split = {s: read_split(found["examples_uri"], s) for s in ("train", "eval", "test")}
    encoder.register_ops()
    saved_model = tf.saved_model.load(found["pushed_model"]["destination"])
    out = saved_model.signatures["serving_default"](title=tf.constant(split["test"][0]))
    names = [t.decode() for t in out[features.OUTPUT_TAGS].numpy()[0]]
    used = [i for i, n in enumerate(names) if n]
    y = {s: multi_hot(split[s][1], names) for s in split}
    return Pushed(found, split, saved_model, used, y, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--metadata", type=Path, default=paths.metadata_path())
    args = parser.parse_args()
    model = pushed(args.metadata)
    found, split, out, used = model.found, model.split, model.out, model.used
    tfx_scores = out[features.OUTPUT_SCORES].numpy()[:, used]
    tfx_threshold = float(out[features.OUTPUT_THRESHOLD].numpy()[0])
    if features.OUTPUT_PREDICTED in out:
        tfx_decisions = out[features.OUTPUT_PREDICTED].numpy()[:, used]
    else:  # a model exported before the signature carried its decision
        tfx_decisions = threshold.decide(tfx_scores, tfx_threshold).numpy()
    y = {s: model.y[s][:, used] for s in split}

    started = time.time()
    vectorize = Features(split["train"][0])
    x = {s: vectorize(split[s][0]) for s in split}
    rows = {}
    for family, settings in FAMILIES.items():
        best = None
        for setting, make in settings:
            classifier = OneVsRestClassifier(make(), n_jobs=2).fit(x["train"], y["train"])
            chosen, eval_f1 = threshold.choose(y["eval"], baseline_scores(classifier, x["eval"]))
            if best is None or eval_f1 > best[0]:
                best = (eval_f1, setting, chosen, classifier)
        _, setting, chosen, classifier = best
        scores = baseline_scores(classifier, x["test"])
        label = f"{family} ({setting}, t={chosen:.2f})"
        rows[label] = scores_table(y["test"], threshold.decide(scores, chosen).numpy(), scores)
    fit_seconds = time.time() - started
    best_baseline = {m: max(r[m] for r in rows.values()) for m in METRICS}
    tfx = scores_table(y["test"], tfx_decisions, tfx_scores)

    print(
        f"pushed model {found['pushed_model']['version']}, "
        + ", ".join(f"span {s['span']} sha256 {s['sha256'][:12]}" for s in found["data_spans"])
    )
    print(
        f"rows train {len(y['train'])}, eval {len(y['eval'])}, test {len(y['test'])}; "
        f"tags {len(used)}; TFX threshold {tfx_threshold:.2f}; baselines fitted and "
        f"tuned in {fit_seconds:.0f} s; scored on the test split"
    )
    width = max(map(len, rows)) + 2
    print(f"{'model':<{width}}" + "".join(f"{m:>12}" for m in METRICS))
    for label, row in rows.items():
        print(f"{label:<{width}}" + "".join(f"{row[m]:>12.4f}" for m in METRICS))
    print(f"{'best baseline, per metric':<{width}}"
          + "".join(f"{best_baseline[m]:>12.4f}" for m in METRICS))  # fmt: skip
    print(f"{'TFX model (pushed)':<{width}}" + "".join(f"{tfx[m]:>12.4f}" for m in METRICS))
    print(f"{'TFX lead over best':<{width}}"
          + "".join(f"{tfx[m] - best_baseline[m]:>+12.4f}" for m in METRICS))  # fmt: skip
    behind = [m for m in METRICS if tfx[m] <= best_baseline[m]]
    print("TFX model ahead on every metric" if not behind else f"TFX model behind on {behind}")


if __name__ == "__main__":
    main()
