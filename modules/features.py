"""The one set of names shared by the data import, Transform, Trainer, Evaluator and serving.

Change a name here and every stage follows; nothing else spells these strings.
"""

import re

# Raw features, as the data import writes them and ExampleGen reads them.
TITLE = "title"
TAGS = "tags"

# Transformed features (outputs of preprocessing_fn).
TERM_IDS = "term_ids"  # TF-IDF term indices of the cleaned title (unigrams + bigrams)
TERM_WEIGHTS = "term_weights"  # the matching TF-IDF weights
LABEL = "tags_multi_hot"  # float32 [NUM_TAGS]

# Vocabulary files written by Transform.
TERM_VOCAB = "terms"
TAG_VOCAB = "tags"

# The label space. The curated schema lists exactly these many tags in its `tags` domain;
# tests/test_schema.py keeps the two in step.
NUM_TAGS = 100

# Serving signature: what a REST client sends and receives.
SERVING_INPUT = TITLE
OUTPUT_SCORES = "scores"
OUTPUT_TAGS = "tags"
OUTPUT_THRESHOLD = "threshold"
# Signature TFMA calls to get the label Transform made (see DESIGN.md pitfalls).
TRANSFORM_SIGNATURE = "transform_features"
# Signature TFMA calls for predictions: serialized tf.Example in, decision-centred scores out.
EVAL_SIGNATURE = "serving_examples"
OUTPUT_DECISION_SCORES = "decision_scores"

# A tag is lower-case and made of the characters StackOverflow allows in tag names.
TAG_PATTERN = re.compile(r"^[a-z0-9.#+][a-z0-9+#.\-]{0,34}$")
