"""What the pipeline is, whichever runner runs it (the TFX templates' configs.py).

Runners add only where things live and how they run: local_runner.py (this machine) and
vertex_runner.py (Vertex AI Pipelines) both read their names, gates and training
settings from here, so the two can never drift apart.
"""

from __future__ import annotations

PIPELINE_NAME = "so-tagger"

# Module code is imported by path from the installed package (setup.py ships it in the
# pipeline image), so compiling for Vertex needs no cloud storage for a user-code wheel.
PREPROCESSING_FN = "modules.preprocessing.preprocessing_fn"
# The encoder setting (--encoder): the same, plus a MiniLM sentence embedding per title.
PREPROCESSING_FN_WITH_ENCODER = "modules.preprocessing.preprocessing_fn_with_encoder"
RUN_FN = "modules.trainer.run_fn"
TUNER_FN = "modules.tuner.tuner_fn"

# Blessing floors for the full data set: well below what the model reaches (docs/model.md: the
# quality) and above what a broken model gets.
BLESSING_FLOORS = {"f1_score": 0.55, "auc": 0.90, "auc_precision_recall": 0.5, "exact_match": 0.25}
# How much worse than the latest blessed model a candidate may be on each gated metric.
BLESSING_TOLERANCE = 0.01

# Training: None means full passes over the train split, early-stopped (modules/trainer.py).
TRAIN_STEPS: int | None = None
EVAL_STEPS: int | None = None
# Tuning: trials when --tune is given without a number, and epochs per trial at most.
TUNING_TRIALS = 6
TUNING_EPOCHS = 5
