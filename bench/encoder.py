"""The pretrained-encoder experiment: frozen all-MiniLM-L6-v2 in the TF graph.

    make bench-encoder      (after `make`; about 15 minutes on 2 cores)

On the pipeline's own splits (the ones bench/quality.py uses), prints in one run:
- cost: titles/s through the encoder at batch 256 (what Transform would add to a run
  over every span) and the p50 of one title (what serving would add per request),
  beside the tagger's own p50 for one title, called in process;
- quality on the test split, settings and threshold chosen on the eval split:
  MiniLM + logistic regression, word+char TF-IDF + MiniLM with a linear SVM (the pretrained
  rows of the baseline family), and our network on the pushed model's features, trained here
  the same way, without and with the embedding as an extra input (trainer.build_model, as
  the encoder setting builds it, then trainer.solve_margin_head), beside the pushed model.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import tensorflow as tf
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.svm import LinearSVC

from bench.quality import METRICS, Features, baseline_scores, pushed, scores_table
from contract import features, paths
from modules import encoder, model, threshold, trainer

BATCH = 256


def embed(net: encoder.MiniLM, titles: list[str]) -> np.ndarray:
    parts = [net(tf.constant(titles[i : i + BATCH])).numpy() for i in range(0, len(titles), BATCH)]
    return np.concatenate(parts)


def p50_ms(call, title: str, n: int = 200) -> float:
    one = tf.constant([title])
    call(one)
    times = []
    for _ in range(n):
        started = time.perf_counter()
        call(one)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def network_rows(served, split, y, emb, used) -> dict[str, dict]:
    """Our network on the pushed model's Transform graph, without and with MiniLM."""
    layer = served.tft_layer

    def inputs(titles: list[str]) -> dict:
        parts = [
            layer({features.TITLE: tf.reshape(tf.constant(titles[i : i + 2048]), [-1, 1])})
            for i in range(0, len(titles), 2048)
        ]
        return {
            k: tf.sparse.concat(0, [p[k] for p in parts], expand_nonconcat_dims=True)
            for k in features.MODEL_INPUTS
        }

    x = {s: inputs(split[s][0]) for s in split}
    rows = {}
    with_embedding = features.MODEL_INPUTS + (features.EMBEDDING,)
    for label, names, encoder_setting in (
        ("our network (trained here)", features.MODEL_INPUTS, False),
        ("our network + MiniLM", with_embedding, True),
    ):
        # What the pipeline's untuned runs train with: the setting's reviewed tuning result.
        reviewed = paths.hyperparameters_file(encoder_setting)
        hp = {**trainer.TRAINING, **json.loads(reviewed.read_text())["values"]}

        def data(s: str, shuffle: bool, names: tuple = names, hp: dict = hp) -> tf.data.Dataset:
            available = {**x[s], features.EMBEDDING: emb[s]}
            values = {name: available[name] for name in names}
            d = tf.data.Dataset.from_tensor_slices((values, y[s].astype("float32")))
            return (d.shuffle(len(y[s]), seed=1) if shuffle else d).batch(hp["batch_size"])

        tf.keras.utils.set_random_seed(hp["seed"])
        net = trainer.build_model(hp, names)
        started = time.time()
        net.fit(
            data("train", True), epochs=hp["epochs"], validation_data=data("eval", False),
            callbacks=[tf.keras.callbacks.EarlyStopping(
                patience=hp["patience"], restore_best_weights=True)], verbose=0,
        )  # fmt: skip
        trainer.solve_margin_head(net, data("train", False), hp)  # as the Trainer does
        seconds = time.time() - started
        scores = {
            s: model.scores(net.predict(data(s, False), verbose=0)).numpy()
            for s in ("eval", "test")
        }
        rows[f"{label} ({seconds:.0f} s)"] = score(y, scores, used)
    return rows


def score(y: dict, scores: dict, used: list[int]) -> dict[str, float]:
    chosen, _ = threshold.choose(y["eval"][:, used], scores["eval"][:, used])
    test = scores["test"][:, used]
    return scores_table(y["test"][:, used], threshold.decide(test, chosen).numpy(), test)


def main() -> None:
    tagger = pushed(paths.metadata_path())
    found, split, served, used, y, out = (
        tagger.found, tagger.split, tagger.saved_model, tagger.used, tagger.y, tagger.out
    )  # fmt: skip
    signature = tagger.signature
    rows = {"TFX model (pushed)": scores_table(
        y["test"][:, used], out[features.OUTPUT_PREDICTED].numpy()[:, used],
        out[features.OUTPUT_SCORES].numpy()[:, used])}  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        net = encoder.MiniLM(encoder.model_files(Path(tmp)))
    started = time.time()
    emb = {s: embed(net, split[s][0]) for s in split}
    count = sum(len(e) for e in emb.values())
    per_second = count / (time.time() - started)
    title = split["test"][0][0]
    encoder_p50 = p50_ms(net, title)
    tagger_p50 = p50_ms(lambda t: signature(title=t), title)

    for c in (1, 4, 16):
        classifier = OneVsRestClassifier(LogisticRegression(C=c, max_iter=1000), n_jobs=2)
        classifier.fit(emb["train"], y["train"][:, used])
        scores = {s: np.zeros(y[s].shape) for s in ("eval", "test")}
        for s in scores:
            scores[s][:, used] = classifier.predict_proba(emb[s])
        rows[f"MiniLM + logistic regression (C={c})"] = score(y, scores, used)
    vectorize = Features(split["train"][0])
    x = {s: sp.hstack([vectorize(split[s][0]), sp.csr_matrix(emb[s])]).tocsr() for s in split}
    classifier = OneVsRestClassifier(LinearSVC(C=0.1), n_jobs=2).fit(
        x["train"], y["train"][:, used]
    )
    scores = {s: np.zeros(y[s].shape) for s in ("eval", "test")}
    for s in scores:
        scores[s][:, used] = baseline_scores(classifier, x[s])
    rows["word+char TF-IDF + MiniLM, linear SVM (C=0.1)"] = score(y, scores, used)
    rows.update(network_rows(served, split, y, emb, used))

    print(f"pushed model {found['pushed_model']['version']}; rows train {len(y['train'])}, "
          f"eval {len(y['eval'])}, test {len(y['test'])}")  # fmt: skip
    print(f"encoder: {per_second:.0f} titles/s at batch {BATCH} ({count} titles in "
          f"{count / per_second:.0f} s, what Transform would add per run); one title p50 "
          f"{encoder_p50:.2f} ms, against the tagger's own {tagger_p50:.2f} ms in process "
          "(serving budget: 3 ms p50 over HTTP)")  # fmt: skip
    width = max(map(len, rows)) + 2
    print(f"{'model':<{width}}" + "".join(f"{m:>12}" for m in METRICS))
    for label, row in rows.items():
        print(f"{label:<{width}}" + "".join(f"{row[m]:>12.4f}" for m in METRICS))


if __name__ == "__main__":
    main()
