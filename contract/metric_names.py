"""Names of the app's Prometheus series that other parts read.

The app exports them (serving/app/metrics.py); the rollout controller scrapes them to
judge a canary (serving/rollout/evidence.py). The alert rules and the dashboard in
deploy/monitoring/ read them by the same names.
"""

from __future__ import annotations

# Counter, labels version and outcome (ok, error): calls to the model server.
MODEL_CALLS = "stackoverflow_tagger_model_calls_total"
# Histogram in seconds, label version: the wall time of those calls.
MODEL_CALL_SECONDS = "stackoverflow_tagger_model_call_seconds"
# Counter, labels version and agreed (true, false): the canary's shadow answers.
SHADOW_ANSWERS = "stackoverflow_tagger_shadow_answers_total"


def bucket(histogram: str) -> str:
    """The series of a histogram's cumulative buckets."""
    return f"{histogram}_bucket"
