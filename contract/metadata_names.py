"""Names of the ML Metadata properties that more than one part reads.

TFX's Pusher and Evaluator write the first three on their output artifacts; the data
import's SpanExampleGen writes the span properties on its Examples artifact. The runners,
the lineage command, the learning worker and the benches read them by these names.
"""

from __future__ import annotations

# Artifact type names.
PUSHED_MODEL = "PushedModel"
# On a PushedModel: 1 if the Pusher published a new version, 0 if it pushed nothing.
PUSHED = "pushed"
PUSHED_VERSION = "pushed_version"  # the version directory's name, a string of digits
PUSHED_DESTINATION = "pushed_destination"
# On a ModelBlessing: 1 if the Evaluator blessed the model.
BLESSED = "blessed"
# On SpanExampleGen's Examples: the spans it read, as JSON [{"span", "sha256",
# "examples"}], and their numbers as "0,1,2" for a glance.
SPANS = "spans"
SPAN_NUMBERS = "span_numbers"
