"""Quality: the pushed TFX model against the baselines a careful engineer would try first.

    make bench-quality      (after `make`; reads build/metadata.sqlite)

    builder/env.sh run python bench/quality.py --also encoder=build/encoder/metadata.sqlite

Every baseline is trained on exactly the examples the pipeline trained on (the ExampleGen
`train` split behind the pushed model, every span it read). Its settings (C, penalty) and
its one global decision threshold are chosen on the `eval` split, with the model's own
at-least-one-tag rule (modules/threshold.py). Everything is scored on the `test` split,
which neither saw. One table: each baseline family at its chosen setting, the best
baseline per metric, the TFX model, any other pushed model named by `--also` (another
run's metadata over the same spans, an `--encoder` run's for one), and each one's lead.

The family: TF-IDF word 1-2 grams + char 2-5 grams (within word boundaries),
one-vs-rest logistic regression (L2 and L1 penalties, C on a grid) and a linear SVM;
the pretrained rows: frozen all-MiniLM-L6-v2 sentence embeddings (modules/encoder.py)
with logistic regression (C on a grid), and beside the TF-IDF vectors with the linear SVM
(`--no-pretrained` leaves them out: they take minutes).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import tempfile
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


PRETRAINED = {
    "MiniLM, logistic regression": [
        (f"C={c:g}", lambda c=c: LogisticRegression(C=c, max_iter=1000)) for c in (1, 4, 16)
    ],
    "word+char TF-IDF + MiniLM, linear SVM": [("C=0.1", lambda: LinearSVC(C=0.1))],
}
EMBED_BATCH = 256


def embed_titles(net: encoder.MiniLM, titles: list[str]) -> np.ndarray:
    parts = [
        net(tf.constant(titles[i : i + EMBED_BATCH])).numpy()
        for i in range(0, len(titles), EMBED_BATCH)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, encoder.HIDDEN), np.float32)


def family_row(settings: list, x: dict, y: dict, family: str) -> tuple[str, dict[str, float]]:
    """The family's setting with the best eval F1, its threshold chosen there too: its
    label and its test split's scores table."""
    best = None
    for setting, make in settings:
        classifier = OneVsRestClassifier(make(), n_jobs=2).fit(x["train"], y["train"])
        chosen, eval_f1 = threshold.choose(y["eval"], baseline_scores(classifier, x["eval"]))
        if best is None or eval_f1 > best[0]:
            best = (eval_f1, setting, chosen, classifier)
    _, setting, chosen, classifier = best
    scores = baseline_scores(classifier, x["test"])
    label = f"{family} ({setting}, t={chosen:.2f})"
    return label, scores_table(y["test"], threshold.decide(scores, chosen).numpy(), scores)


def pretrained_rows(emb: dict, tfidf: dict, y: dict) -> dict[str, dict[str, float]]:
    """The frozen-MiniLM families on the embeddings of each split."""
    inputs = {
        "MiniLM, logistic regression": emb,
        "word+char TF-IDF + MiniLM, linear SVM": {
            s: sp.hstack([tfidf[s], sp.csr_matrix(emb[s])]).tocsr() for s in tfidf
        },
    }
    rows = {}
    for family, settings in PRETRAINED.items():
        label, row = family_row(settings, inputs[family], y, family)
        rows[label] = row
    return rows


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


def model_row(model: Pushed) -> dict[str, float]:
    """The model's own decisions and scores on the test split, scored: its table row."""
    scores = model.out[features.OUTPUT_SCORES].numpy()[:, model.used]
    if features.OUTPUT_PREDICTED in model.out:
        decisions = model.out[features.OUTPUT_PREDICTED].numpy()[:, model.used]
    else:  # a model exported before the signature carried its decision
        chosen = float(model.out[features.OUTPUT_THRESHOLD].numpy()[0])
        decisions = threshold.decide(scores, chosen).numpy()
    return scores_table(model.y["test"][:, model.used], decisions, scores)


def tag_names(model: Pushed) -> list[str]:
    return [model.out[features.OUTPUT_TAGS].numpy()[0][i].decode() for i in model.used]


def also_model(pair: str, first: Pushed) -> tuple[str, Pushed]:
    """LABEL=METADATA: another run's pushed model, on the first one's test titles."""
    label, _, path = pair.partition("=")
    if not path:
        sys.exit(f"--also wants LABEL=METADATA_PATH, got {pair!r}")
    other = pushed(Path(path))
    if other.split["test"][0] != first.split["test"][0]:
        sys.exit(f"{label}: its test split is not the first model's (other spans?)")
    if sorted(tag_names(other)) != sorted(tag_names(first)):
        sys.exit(f"{label}: its tags are not the first model's")
    return label, other


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--metadata", type=Path, default=paths.metadata_path())
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="LABEL=METADATA_PATH",
        help="score another run's pushed model too (same spans), in its own row; repeatable",
    )
    parser.add_argument("--no-pretrained", action="store_true", help="skip the MiniLM rows")
    args = parser.parse_args()
    model = pushed(args.metadata)
    found, split, out, used = model.found, model.split, model.out, model.used
    tfx_threshold = float(out[features.OUTPUT_THRESHOLD].numpy()[0])
    ours = {"TFX model (pushed)": model_row(model)}
    for pair in args.also:
        label, other = also_model(pair, model)
        ours[f"{label} ({other.found['pushed_model']['version']})"] = model_row(other)
    y = {s: model.y[s][:, used] for s in split}

    started = time.time()
    vectorize = Features(split["train"][0])
    x = {s: vectorize(split[s][0]) for s in split}
    rows = {}
    for family, settings in FAMILIES.items():
        label, row = family_row(settings, x, y, family)
        rows[label] = row
    if not args.no_pretrained:
        with tempfile.TemporaryDirectory() as tmp:
            net = encoder.MiniLM(encoder.model_files(Path(tmp)))
        rows.update(pretrained_rows({s: embed_titles(net, split[s][0]) for s in split}, x, y))
    fit_seconds = time.time() - started
    best_baseline = {m: max(r[m] for r in rows.values()) for m in METRICS}

    print(
        f"pushed model {found['pushed_model']['version']}, "
        + ", ".join(f"span {s['span']} sha256 {s['sha256'][:12]}" for s in found["data_spans"])
    )
    print(
        f"rows train {len(y['train'])}, eval {len(y['eval'])}, test {len(y['test'])}; "
        f"tags {len(used)}; TFX threshold {tfx_threshold:.2f}; baselines fitted and "
        f"tuned in {fit_seconds:.0f} s; scored on the test split"
    )
    width = max(map(len, [*rows, *ours])) + 2
    print(f"{'model':<{width}}" + "".join(f"{m:>12}" for m in METRICS))
    for label, row in rows.items():
        print(f"{label:<{width}}" + "".join(f"{row[m]:>12.4f}" for m in METRICS))
    print(
        f"{'best baseline, per metric':<{width}}"
        + "".join(f"{best_baseline[m]:>12.4f}" for m in METRICS)
    )
    for label, row in ours.items():
        print(f"{label:<{width}}" + "".join(f"{row[m]:>12.4f}" for m in METRICS))
        print(
            f"{'  lead over best':<{width}}"
            + "".join(f"{row[m] - best_baseline[m]:>+12.4f}" for m in METRICS)
        )
    for label, row in ours.items():
        behind = [m for m in METRICS if row[m] <= best_baseline[m]]
        print(f"{label}: " + ("ahead on every metric" if not behind else f"behind on {behind}"))


if __name__ == "__main__":
    main()
