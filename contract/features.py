"""The one set of names and limits shared by the data import, Transform, Trainer,
Evaluator and serving.

Change a name or a limit here and every stage follows; nothing else spells these
strings or repeats these numbers.
"""

import re

# Raw features, as the data import writes them and ExampleGen reads them.
TITLE = "title"
TAGS = "tags"

# Transformed features (outputs of preprocessing_fn).
TERM_IDS = "term_ids"  # TF-IDF term indices of the cleaned title (unigrams + bigrams)
TERM_WEIGHTS = "term_weights"  # the matching TF-IDF weights
CHAR_IDS = "char_ids"  # TF-IDF indices of the title's character n-grams
CHAR_WEIGHTS = "char_weights"
# What the Keras network reads, in this order.
MODEL_INPUTS = (TERM_IDS, TERM_WEIGHTS, CHAR_IDS, CHAR_WEIGHTS)
# float32 [EMBEDDING_WIDTH]: the title's MiniLM sentence embedding (modules/encoder.py).
# Only with the encoder setting (`--encoder`, preprocessing_fn_with_encoder); the network reads it
# after MODEL_INPUTS.
EMBEDDING = "embedding"
EMBEDDING_WIDTH = 384
LABEL = "tags_multi_hot"  # float32 [NUM_TAGS]
# For the Evaluator's slices only (the network does not read them).
TITLE_WORDS = "title_words"  # the title's length in words, as a bucket label: "5-8 words"
TRUE_TAGS = "true_tags"  # how many tags the example carries

# Vocabulary files written by Transform.
TERM_VOCAB = "terms"
CHAR_VOCAB = "char_grams"
TAG_VOCAB = "tags"

# The label space. The curated schema lists exactly these many tags in its `tags` domain;
# tests/test_schema.py keeps the two in step.
NUM_TAGS = 100

# Serving signature: what a REST client sends and receives.
SERVING_INPUT = TITLE
OUTPUT_SCORES = "scores"
OUTPUT_TAGS = "tags"
OUTPUT_THRESHOLD = "threshold"
OUTPUT_PREDICTED = "predicted"  # bool [batch, NUM_TAGS]: the model's decision (threshold.py)
# Signature TFMA calls to get the label Transform made: TFMA sees the multi-hot label
# only through a signature that applies Transform, named in preprocessing_function_names.
TRANSFORM_SIGNATURE = "transform_features"
# Signature TFMA calls for predictions: serialized tf.Example in, decision-centred scores out.
EVAL_SIGNATURE = "serving_examples"
OUTPUT_DECISION_SCORES = "decision_scores"

# Limits on what a labelled row (the data import) and a piece of feedback (the app) may
# carry: a title of at most MAX_TITLE_CHARS characters with one to MAX_TAGS tags.
MAX_TITLE_CHARS = 300
MAX_TAGS = 5
MAX_TAG_CHARS = 35
# A tag is lower-case and made of the characters StackOverflow allows in tag names.
TAG_PATTERN = re.compile(rf"^[a-z0-9.#+][a-z0-9+#.\-]{{0,{MAX_TAG_CHARS - 1}}}$")
TAG_RULE = f"lower-case letters, digits and . # + - only, at most {MAX_TAG_CHARS}"
