"""A small hand-built SavedModel for the model server's multi-input and edge cases.

Signatures:
  serving_default  a float32 [batch, 2], b int64 [batch] -> total float32 [batch]
                   (sum of a's row plus b), version int64 [batch] (which version answered)
  single           x string [batch] -> upper string [batch] (one output: name left out)
  bytes_echo       data string [batch] -> data_bytes string [batch] (sent back as b64)
  slow             n int64 [batch] -> count float32 [batch], after a loop of n[0] steps
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf


class ToyModel(tf.Module):
    def __init__(self, version: int) -> None:
        super().__init__()
        self.version = tf.Variable(version, dtype=tf.int64, trainable=False)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, 2], tf.float32, name="a"),
            tf.TensorSpec([None], tf.int64, name="b"),
        ]
    )
    def serving_default(self, a, b):
        total = tf.reduce_sum(a, axis=1) + tf.cast(b, tf.float32)
        return {"total": total, "version": tf.fill(tf.shape(b), self.version)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="x")])
    def single(self, x):
        return {"upper": tf.strings.upper(x)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="data")])
    def bytes_echo(self, data):
        return {"data_bytes": data}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="n")])
    def slow(self, n):
        def step(i, acc):
            return i + 1, acc + tf.sin(tf.cast(i, tf.float32))

        _, acc = tf.while_loop(lambda i, acc: i < n[0], step, [tf.constant(0, tf.int64), 0.0])
        return {"count": tf.fill(tf.shape(n), acc)}


def save_toy_model(path: Path, version: int) -> Path:
    model = ToyModel(version)
    signatures = {
        "serving_default": model.serving_default,
        "single": model.single,
        "bytes_echo": model.bytes_echo,
        "slow": model.slow,
    }
    tf.saved_model.save(model, str(path), signatures=signatures)
    return path
