"""Where this machine keeps things: the one place local paths are resolved.

Everything lives under the build directory (TAGGER_BUILD_DIR, default <checkout>/build);
each part can be moved on its own with its TAGGER_* variable. The data directory (the
labelled TSV files) defaults to the shared copy beside the checkout.

    python -m contract.paths NAME      prints one of them (for the Makefile and scripts)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from contract import serving_layout

CHECKOUT = Path(__file__).resolve().parent.parent
# Reviewed files, relative to the checkout (or to the pipeline image's /pipeline).
SCHEMA_FILE = "schema/schema.pbtxt"
# The last tuning's best hyperparameters, reviewed like the schema: what untuned runs train
# with (`make tune` proposes new ones). One per feature setting (--encoder or not): values
# tuned for one set of inputs are not the other's.
HYPERPARAMETERS_DIRS = {False: "hyperparameters/default", True: "hyperparameters/encoder"}
HYPERPARAMETERS_FILE_NAME = "best_hyperparameters.txt"  # TFX's file name


def _setting(variable: str, default: Path) -> Path:
    return Path(os.environ.get(variable) or default).resolve()


def build_dir() -> Path:
    return _setting("TAGGER_BUILD_DIR", CHECKOUT / "build")


def data_dir() -> Path:
    return _setting("TAGGER_DATA_DIR", CHECKOUT.parent / "shared" / "data" / "stackoverflow")


def spans_dir() -> Path:
    return _setting("TAGGER_SPANS_DIR", build_dir() / "spans")


def pipeline_root() -> Path:
    return _setting("TAGGER_PIPELINE_ROOT", build_dir() / "pipeline")


def metadata_path() -> Path:
    return _setting("TAGGER_METADATA", build_dir() / "metadata.sqlite")


def serving_dir() -> Path:
    """TF Serving's model base directory: it holds one folder per model name."""
    return _setting("TAGGER_SERVING_DIR", build_dir() / "serving")


def serving_model_dir() -> Path:
    """<serving base>/<model>: where the Pusher writes integer-named versions."""
    return serving_dir() / serving_layout.MODEL_NAME


def logs_dir() -> Path:
    return build_dir() / "logs"


def feedback_url() -> str:
    """The feedback store: TAGGER_FEEDBACK_URL (sqlite:///path or postgresql://...), by
    default a SQLite file in the build directory."""
    return os.environ.get("TAGGER_FEEDBACK_URL") or f"sqlite:///{build_dir() / 'feedback.db'}"


def model_url() -> str:
    """TF Serving's REST API, as the app and the rollout controller reach it:
    TAGGER_MODEL_URL, by default the model server `make serve` starts."""
    return os.environ.get("TAGGER_MODEL_URL") or "http://127.0.0.1:8501"


def model_base_path() -> str:
    """TF Serving's base path for the model (a directory or gs://), where the Pusher
    publishes versions and their quality: TAGGER_MODEL_BASE_PATH, by default the local
    serving directory."""
    return os.environ.get("TAGGER_MODEL_BASE_PATH") or str(serving_model_dir())


def schema_path() -> Path:
    return CHECKOUT / SCHEMA_FILE


def hyperparameters_dir(encoder: bool = False) -> Path:
    """The reviewed hyperparameters of the setting (runner flag --encoder)."""
    return CHECKOUT / HYPERPARAMETERS_DIRS[encoder]


def hyperparameters_file(encoder: bool = False) -> Path:
    return hyperparameters_dir(encoder) / HYPERPARAMETERS_FILE_NAME


NAMES = {
    "model_name": lambda: serving_layout.MODEL_NAME,
    "build": build_dir,
    "data": data_dir,
    "spans": spans_dir,
    "pipeline_root": pipeline_root,
    "metadata": metadata_path,
    "serving": serving_dir,
    "serving_model": serving_model_dir,
    "logs": logs_dir,
}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in NAMES:
        sys.exit(f"usage: python -m contract.paths {{{'|'.join(NAMES)}}}")
    print(NAMES[sys.argv[1]]())
