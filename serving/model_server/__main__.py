"""python -m serving.model_server --rest_api_port=8501 --model_name=tagger --model_base_path=DIR"""

import os
import sys

# TensorFlow reads this once, when it is imported, so it is set before the server is.
# oneDNN's graph rewrites (TensorFlow's default on x86) made the MiniLM model's calls
# depend on the shape of the first one, and titles of mixed lengths, which is what a
# server sees, ran slower than without them; the default model runs the same either
# way (docs/model.md). An operator's own TF_ENABLE_ONEDNN_OPTS still wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from serving.model_server.server import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
