"""A small real tagger SavedModel, made without a pipeline run, for the serving tests.

The same preprocessing_fn (through tf.Transform), network and export as the pipeline's
Trainer, fitted for a few epochs on a few hundred titles: the serving signature, the tag
names and the threshold are the real ones; the quality is not the point.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

from contract import features
from ingest import seed_tsv
from modules import model, preprocessing, trainer
from tests.hyperparameters import network

RAW_SPEC = {
    features.TITLE: tf.io.FixedLenFeature([1], tf.string),
    features.TAGS: tf.io.VarLenFeature(tf.string),
}
EPOCHS = 15
THRESHOLD = 0.3


def build_tagger_model(tsv: Path, export_dir: Path, epochs: int = EPOCHS) -> Path:
    """Fit and export a tagger on the rows of a seed-format TSV file."""
    with open(tsv, "rb") as f:
        rows = list(seed_tsv.read_rows(f, seed_tsv.ParseReport()))
    raw = [
        {features.TITLE: [r.title.encode()], features.TAGS: [t.encode() for t in r.tags]}
        for r in rows
    ]
    work = export_dir.parent / f"{export_dir.name}-transform"
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(RAW_SPEC))
    with tft_beam.Context(temp_dir=str(work / "tmp"), force_tf_compat_v1=False):
        (transformed, _), transform_fn = (raw, metadata) | tft_beam.AnalyzeAndTransformDataset(
            preprocessing.preprocessing_fn
        )
        _ = transform_fn | tft_beam.WriteTransformFn(str(work / "output"))
    # The raw schema, which TFX's Transform writes too: the serving signature parses by it.
    metadata_io.write_metadata(
        metadata, str(work / "output" / tft.TFTransformOutput.RAW_METADATA_DIR)
    )
    tft_output = tft.TFTransformOutput(str(work / "output"))

    def sparse(name: str, dtype) -> tf.SparseTensor:
        return tf.ragged.constant([r[name] for r in transformed], dtype=dtype).to_sparse()

    inputs = {
        name: sparse(name, dtype)
        for name, dtype in zip(features.MODEL_INPUTS, (tf.int64, tf.float32) * 2, strict=True)
    }
    labels = np.stack([r[features.LABEL] for r in transformed]).astype(np.float32)
    tf.keras.utils.set_random_seed(0)
    net = model.build(
        **network(hidden_units=64, dropout=0.1, learning_rate=0.01, wide_step_scale=1.0)
    )
    net.fit(inputs, labels, batch_size=64, epochs=epochs, verbose=0)
    trainer.export(net, tft_output, THRESHOLD, str(export_dir))
    return export_dir
