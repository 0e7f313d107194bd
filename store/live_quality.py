"""Live quality: each served version's decisions against the tags people corrected them to.

Every feedback sample records the version that answered its client. A version's live
quality is read from its newest WINDOW samples (withdrawn and rejected ones left out),
of which at most the newest `per_source` of each source count, so no one client sets a
version's score, and a scrape reads the same few rows however much feedback is stored.
"""

from __future__ import annotations

import dataclasses
import json

from store.database import Database
from store.samples import REJECTED, WITHDRAWN

# Samples of one source that count towards a version's live quality (the newest ones).
LIVE_PER_SOURCE = 20
# A version's newest samples that its live quality is read from.
WINDOW = 2000


@dataclasses.dataclass(frozen=True)
class LiveQuality:
    """A served version's decisions against what people corrected them to.

    F1 micro is a ratio over samples, sum(2 TP) / sum(2 TP + FP + FN); squares holds
    sum(x^2), sum(x d), sum(d^2) of each sample's x = 2 TP and d = 2 TP + FP + FN, what
    its spread over samples needs (f1_variance): a sample's tags rise and fall together,
    so they are not independent trials."""

    samples: int
    true_positives: int
    false_positives: int
    false_negatives: int
    squares: tuple[float, float, float] = dataclasses.field(default=(0.0, 0.0, 0.0), compare=False)

    @classmethod
    def of(cls, counts: list[tuple[int, int, int]]) -> LiveQuality:
        """From each sample's (TP, FP, FN)."""
        xs = [2 * tp for tp, _, _ in counts]
        ds = [2 * tp + fp + fn for tp, fp, fn in counts]
        xd = sum(x * d for x, d in zip(xs, ds, strict=True))
        squares = (float(sum(x * x for x in xs)), float(xd), float(sum(d * d for d in ds)))
        return cls(
            len(counts),
            sum(c[0] for c in counts),
            sum(c[1] for c in counts),
            sum(c[2] for c in counts),
            squares,
        )

    @property
    def f1_variance(self) -> float:
        """The ratio estimator's variance over samples (delta method):
        n / (n - 1) * sum((x - F1 d)^2) / sum(d)^2."""
        total = 2 * self.true_positives + self.false_positives + self.false_negatives
        if self.samples < 2 or not total:
            return 0.0
        xx, xd, dd = self.squares
        r = self.f1
        residual = max(0.0, xx - 2 * r * xd + r * r * dd)
        return self.samples / (self.samples - 1) * residual / total**2

    @property
    def precision(self) -> float:
        return self.true_positives / max(1, self.true_positives + self.false_positives)

    @property
    def recall(self) -> float:
        return self.true_positives / max(1, self.true_positives + self.false_negatives)

    @property
    def f1(self) -> float:
        tp = 2 * self.true_positives
        return tp / max(1, tp + self.false_positives + self.false_negatives)


def live_quality(
    db: Database, versions: list[str], per_source: int = LIVE_PER_SOURCE, window: int = WINDOW
) -> dict[str, LiveQuality]:
    """For each of these versions that has feedback, its decisions against the corrected
    tags of the feedback naming it (see the module docstring for what counts)."""
    found: dict[str, LiveQuality] = {}
    with db.transaction() as t:
        for version in dict.fromkeys(versions):
            # Ordered as the index feedback_version is, which alone serves it.
            index = t.indexed_by("feedback_version")
            rows = t.run(
                f"SELECT source, predicted, actual FROM feedback {index} WHERE "
                "served_version = ? AND status NOT IN (?, ?) "
                "ORDER BY served_version DESC, id DESC LIMIT ?",
                (version, WITHDRAWN, REJECTED, window),
            ).fetchall()
            counted: dict[str, int] = {}
            counts = []
            for source, predicted_text, actual_text in rows:
                counted[source] = counted.get(source, 0) + 1
                if counted[source] > per_source:
                    continue
                predicted, actual = set(json.loads(predicted_text)), set(json.loads(actual_text))
                counts.append(
                    (len(predicted & actual), len(predicted - actual), len(actual - predicted))
                )
            if counts:
                found[version] = LiveQuality.of(counts)
    return found
