"""The checks a canary must pass before each promotion stage, as pure functions.

Each gives PASS, FAIL or PENDING (too little evidence yet: the stage waits). Evidence is
what happened since the stage began: requests and latencies the app recorded per version,
shadow comparisons, the live quality of each version from its users' corrections, and
the drift monitor's last verdict.
"""

from __future__ import annotations

import dataclasses
import math

from store.live_quality import LiveQuality

PASS, FAIL, PENDING = "pass", "fail", "pending"


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Limits:
    max_error_rate: float = 0.01
    min_requests: int = 50
    # Canary p99 may exceed stable's by this factor plus this many seconds.
    p99_factor: float = 1.5
    p99_slack_s: float = 0.010
    min_feedback: int = 30  # samples naming each version before F1 is compared
    f1_z: float = 1.645  # one-sided 5 %
    min_agreement: float = 0.6
    min_comparisons: int = 50


def error_rate(requests: float, errors: float, limits: Limits) -> Check:
    if requests < limits.min_requests:
        return Check("error_rate", PENDING, f"{requests:g} of {limits.min_requests} requests")
    rate = errors / requests
    status = PASS if rate <= limits.max_error_rate else FAIL
    return Check(
        "error_rate", status, f"{rate:.2%} of {requests:g} (max {limits.max_error_rate:.2%})"
    )


def latency(
    canary_p99: float | None, stable_p99: float | None, requests: float, limits: Limits
) -> Check:
    if requests < limits.min_requests or canary_p99 is None or stable_p99 is None:
        return Check("latency_p99", PENDING, f"{requests:g} of {limits.min_requests} requests")
    bound = stable_p99 * limits.p99_factor + limits.p99_slack_s
    status = PASS if canary_p99 <= bound else FAIL
    return Check(
        "latency_p99",
        status,
        f"{canary_p99 * 1e3:.1f} ms (stable {stable_p99 * 1e3:.1f} ms, max {bound * 1e3:.1f} ms)",
    )


def live_f1(canary: LiveQuality | None, stable: LiveQuality | None, limits: Limits) -> Check:
    """Fails when the canary's live F1 is below stable's by more than chance: a one-sided
    z-test on the difference of the two F1s, each with its spread over samples
    (LiveQuality.f1_variance). A sample is the unit: counting its tags as independent
    trials would make chance differences between two equal models look significant."""
    have = (canary.samples if canary else 0, stable.samples if stable else 0)
    if min(have) < limits.min_feedback:
        return Check(
            "live_f1",
            PENDING,
            f"feedback samples canary {have[0]}, stable {have[1]} (need "
            f"{limits.min_feedback} each)",
        )
    spread = math.sqrt(canary.f1_variance + stable.f1_variance) or 1e-12
    z = (canary.f1 - stable.f1) / spread
    status = FAIL if z < -limits.f1_z else PASS
    return Check(
        "live_f1",
        status,
        f"canary {canary.f1:.3f} ({canary.samples}), stable {stable.f1:.3f} "
        f"({stable.samples}), z {z:.2f}",
    )


def agreement(agreed: float, compared: float, limits: Limits) -> Check:
    if compared < limits.min_comparisons:
        return Check(
            "agreement", PENDING, f"{compared:g} of {limits.min_comparisons} shadow answers"
        )
    share = agreed / compared
    status = PASS if share >= limits.min_agreement else FAIL
    return Check(
        "agreement",
        status,
        f"{share:.1%} of {compared:g} same tags as stable (min {limits.min_agreement:.0%})",
    )


def skew(verdict: dict | None) -> Check:
    """The drift monitor's latest record (monitoring/job.py: alarm, features above)."""
    if verdict is None:
        return Check("skew", PASS, "no drift monitor record (the check is off)")
    if verdict.get("alarm"):
        return Check("skew", FAIL, f"monitor alarm: {', '.join(verdict.get('above', []))}")
    return Check("skew", PASS, f"window ending {verdict.get('window_end', '?')} within thresholds")
