"""The pretrained-encoder experiment: frozen all-MiniLM-L6-v2 in the TF graph.

    make bench-encoder      (after `make`; about 13 minutes on 2 cores)

On the pipeline's own splits (the ones bench/quality.py uses), prints in one run:
- cost: titles/s through the encoder at batch 256 (what Transform would add to a run
  over every span) and the p50 of one title (what serving would add per request),
  beside the tagger's own p50 for one title, called in process;
- quality on the test split, settings and threshold chosen on the eval split:
  MiniLM + logistic regression, word+char TF-IDF + MiniLM with a linear SVM (the pretrained
  rows of the baseline family), and our network on the pushed model's features, trained here
  the same way, without and with the embedding as an extra input (trainer.build_model, as
  the encoder setting builds it, then trainer.solve_margin_head), beside the pushed model.
  Each network is trained with `--seeds` seeds (the reviewed seed and the next ones): a
  row per seed, and per metric the lowest of them, which is what a retrain can land on.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import tensorflow as tf

from bench.quality import (
    EMBED_BATCH,
    METRICS,
    Features,
    embed_titles,
    model_row,
    pretrained_rows,
    pushed,
    scores_table,
)
from contract import features, paths
from modules import encoder, model, threshold, trainer


def p50_ms(call, title: str, n: int = 200) -> float:
    one = tf.constant([title])
    call(one)
    times = []
    for _ in range(n):
        started = time.perf_counter()
        call(one)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def network_rows(served, split, y, emb, used, seeds: int) -> dict[str, dict]:
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

        def data(
            s: str, shuffle: int | None, names: tuple = names, hp: dict = hp
        ) -> tf.data.Dataset:
            available = {**x[s], features.EMBEDDING: emb[s]}
            values = {name: available[name] for name in names}
            d = tf.data.Dataset.from_tensor_slices((values, y[s].astype("float32")))
            return (d if shuffle is None else d.shuffle(len(y[s]), seed=shuffle)).batch(
                hp["batch_size"]
            )

        runs = []
        for seed in range(hp["seed"], hp["seed"] + seeds):
            tf.keras.utils.set_random_seed(seed)
            net = trainer.build_model(hp, names)
            started = time.time()
            net.fit(
                data("train", seed),
                epochs=hp["epochs"],
                validation_data=data("eval", None),
                callbacks=[
                    tf.keras.callbacks.EarlyStopping(
                        patience=hp["patience"], restore_best_weights=True
                    )
                ],
                verbose=0,
            )
            trainer.solve_margin_head(net, data("train", None), hp)  # as the Trainer does
            seconds = time.time() - started
            scores = {
                s: model.scores(net.predict(data(s, None), verbose=0)).numpy()
                for s in ("eval", "test")
            }
            runs.append(score(y, scores, used))
            rows[f"{label}, seed {seed} ({seconds:.0f} s)"] = runs[-1]
        if seeds > 1:
            rows[f"{label}, lowest of {seeds} seeds"] = {
                m: min(run[m] for run in runs) for m in METRICS
            }
    return rows


def score(y: dict, scores: dict, used: list[int]) -> dict[str, float]:
    chosen, _ = threshold.choose(y["eval"][:, used], scores["eval"][:, used])
    test = scores["test"][:, used]
    return scores_table(y["test"][:, used], threshold.decide(test, chosen).numpy(), test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="trainings per network row")
    args = parser.parse_args()
    tagger = pushed(paths.metadata_path())
    found, split, served, used, y = (
        tagger.found,
        tagger.split,
        tagger.saved_model,
        tagger.used,
        tagger.y,
    )
    signature = tagger.signature
    rows = {"TFX model (pushed)": model_row(tagger)}

    with tempfile.TemporaryDirectory() as tmp:
        net = encoder.MiniLM(encoder.model_files(Path(tmp)))
    started = time.time()
    emb = {s: embed_titles(net, split[s][0]) for s in split}
    count = sum(len(e) for e in emb.values())
    per_second = count / (time.time() - started)
    title = split["test"][0][0]
    encoder_p50 = p50_ms(net, title)
    tagger_p50 = p50_ms(lambda t: signature(title=t), title)

    vectorize = Features(split["train"][0])
    tfidf = {s: vectorize(split[s][0]) for s in split}
    rows.update(pretrained_rows(emb, tfidf, {s: y[s][:, used] for s in split}))
    rows.update(network_rows(served, split, y, emb, used, args.seeds))

    print(
        f"pushed model {found['pushed_model']['version']}; rows train {len(y['train'])}, "
        f"eval {len(y['eval'])}, test {len(y['test'])}"
    )
    print(
        f"encoder: {per_second:.0f} titles/s at batch {EMBED_BATCH} ({count} titles in "
        f"{count / per_second:.0f} s, what Transform would add per run); one title p50 "
        f"{encoder_p50:.2f} ms, against the tagger's own {tagger_p50:.2f} ms in process "
        "(serving budget: 3 ms p50 over HTTP)"
    )
    width = max(map(len, rows)) + 2
    print(f"{'model':<{width}}" + "".join(f"{m:>12}" for m in METRICS))
    for label, row in rows.items():
        print(f"{label:<{width}}" + "".join(f"{row[m]:>12.4f}" for m in METRICS))


if __name__ == "__main__":
    main()
