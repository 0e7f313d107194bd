"""The rollout controller: one loop that moves each new version from pushed to stable,
or back out.

Each tick it
  1. adopts the newest version on disk as stable when there is none, and starts the
     newest version above stable that was never rejected as the canary, at stage 0;
  2. writes the model config TF Serving polls (models_config.py): the versions of the
     release, `stable`, and `canary` once the model server has it AVAILABLE;
  3. judges the canary on what happened since its stage began (checks.py): any FAIL
     rolls it back and rejects it for good; all PASS after the stage's dwell time moves
     it to the next stage, and after the last one promotes it;
  4. keeps the version just replaced loaded for `grace_s`, so answers already routed to
     it finish, then drops it;
  5. writes each version's events beside it (contract.serving_layout.rollout_path) for
     the lineage command.

Stages are (mode, share): ("shadow", 0) answers every request with stable and asks the
canary too, to compare; ("canary", 0.1) lets a tenth of the clients, chosen by a stable
hash, see the canary. It needs no TensorFlow, TFMA or ML Metadata: its evidence is the
app's /metrics (evidence.py), the live quality in the database, and the drift monitor's
record file.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections import defaultdict

from contract import serving_layout
from serving.rollout import checks, models_config
from serving.rollout.evidence import Evidence, available_versions, scrape
from serving.rollout.state import (
    ADOPTED,
    CANARY,
    PROMOTED,
    SHADOW,
    STABLE,
    STAGED,
    STARTED,
    Releases,
)
from store import objects
from store.database import Database
from store.live_quality import live_quality
from store.releases import Event, Release

log = logging.getLogger(__name__)
DEFAULT_STAGES = ((SHADOW, 0.0), (CANARY, 0.1), (CANARY, 0.5))


def parse_stages(text: str) -> tuple[tuple[str, float], ...]:
    """ "shadow,0.1,0.5" -> the stages; a number is a canary share."""
    stages = []
    for part in text.split(","):
        part = part.strip()
        if part == SHADOW:
            stages.append((SHADOW, 0.0))
        elif 0 < float(part) < 1:
            stages.append((CANARY, float(part)))
        else:
            raise ValueError(f"a stage is 'shadow' or a canary share between 0 and 1: {part}")
    return tuple(stages)


@dataclasses.dataclass
class Settings:
    model: str
    base_path: str  # where the Pusher publishes versions (local or gs://)
    config_path: str  # the model config TF Serving polls
    model_url: str
    metrics_urls: list[str]  # the app's /metrics pages
    monitor_record: str | None = None  # the drift monitor's latest record, if any
    stages: tuple[tuple[str, float], ...] = DEFAULT_STAGES
    stage_s: float = 300.0
    grace_s: float = 30.0
    limits: checks.Limits = dataclasses.field(default_factory=checks.Limits)


class Controller:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings, self.db = settings, db
        self.releases = Releases(db, settings.model)
        self._baseline: tuple[tuple[str | None, int], Evidence] | None = None
        self.last_checks: list[checks.Check] = []
        self._published = 0

    # --- one tick ------------------------------------------------------------------------

    def tick(self) -> Release:
        s = self.settings
        release = self._start_new(self.releases.current())
        if release.previous and time.time() - release.stage_since >= s.grace_s:
            after = dataclasses.replace(release, previous=None)
            if self.releases.change(release, after, None):
                release = after
        labelled = self._write_config(release)
        if release.canary and labelled:
            judged = self._judge(release)
            if judged != release:
                self._write_config(judged)
            release = judged
        self.publish()
        return release

    def _write_config(self, release: Release) -> bool:
        """The model config for this release; True when the canary is labelled in it."""
        s = self.settings
        available = available_versions(s.model_url, s.model)
        labels = {STABLE: release.stable} if release.stable else {}
        if release.canary and release.canary in available:
            labels[CANARY] = release.canary
        versions = {v for v in (release.stable, release.canary, release.previous) if v}
        if versions:
            text = models_config.render(s.model, s.base_path, versions, labels)
            if models_config.write_if_changed(s.config_path, text):
                log.info("model config: versions %s, labels %s", sorted(versions), labels)
        return CANARY in labels

    def _versions_on_disk(self) -> list[str]:
        names = objects.children(self.settings.base_path)
        return [str(number) for number in serving_layout.versions(names)]

    def _start_new(self, release: Release) -> Release:
        rejected = self.releases.rejected()
        candidates = [v for v in self._versions_on_disk() if v not in rejected]
        if not candidates:
            return release
        newest, now = candidates[-1], time.time()
        if release.stable is None:
            after = Release(stable=newest, stage_since=now)
            event = Event(newest, ADOPTED, "no stable version yet: the newest pushed one")
        elif release.canary is None and int(newest) > int(release.stable):
            mode, share = self.settings.stages[0]
            after = dataclasses.replace(
                release, canary=newest, mode=mode, share=share, stage=0, stage_since=now
            )
            event = Event(
                newest,
                STARTED,
                f"newly pushed; stage 1 of {len(self.settings.stages)} ({mode} {share:g})",
            )
        else:
            return release
        return after if self.releases.change(release, after, event) else self.releases.current()

    def evidence(self, release: Release) -> Evidence:
        """What happened since this stage began (the first look at a stage is its start)."""
        key = (release.canary, release.stage)
        now = scrape(self.settings.metrics_urls)
        if self._baseline is None or self._baseline[0] != key:
            self._baseline = (key, now)
        return now.minus(self._baseline[1])

    def judge(self, release: Release) -> list[checks.Check]:
        s, limits = self.settings, self.settings.limits
        seen = self.evidence(release)
        canary, stable = release.canary, release.stable
        requests = sum(v for (ver, _), v in seen.calls.items() if ver == canary)
        errors = seen.calls.get((canary, "error"), 0.0)
        found = [
            checks.error_rate(requests, errors, limits),
            checks.latency(seen.p99(canary), seen.p99(stable), requests, limits),
        ]
        if release.mode == SHADOW:
            agreed = seen.shadow.get((canary, "true"), 0.0)
            compared = agreed + seen.shadow.get((canary, "false"), 0.0)
            found.append(checks.agreement(agreed, compared, limits))
        else:
            live = live_quality(self.db, [canary, stable])
            found.append(checks.live_f1(live.get(canary), live.get(stable), limits))
        record = objects.read(s.monitor_record) if s.monitor_record else None
        found.append(checks.skew(json.loads(record) if record else None))
        return found

    def _judge(self, release: Release) -> Release:
        found = self.last_checks = self.judge(release)
        as_dicts = [c.as_dict() for c in found]
        failed = [c for c in found if c.status == checks.FAIL]
        if failed:
            reason = "; ".join(f"{c.name}: {c.detail}" for c in failed)
            log.warning("rolling back %s: %s", release.canary, reason)
            return self.releases.rollback("controller", reason, as_dicts)
        dwell = time.time() - release.stage_since
        if dwell < self.settings.stage_s or any(c.status == checks.PENDING for c in found):
            return release
        stages, now = self.settings.stages, time.time()
        if release.stage + 1 < len(stages):
            mode, share = stages[release.stage + 1]
            after = dataclasses.replace(
                release, mode=mode, share=share, stage=release.stage + 1, stage_since=now
            )
            event = Event(
                release.canary,
                STAGED,
                f"checks held for {dwell:.0f} s; stage "
                f"{release.stage + 2} of {len(stages)} ({mode} {share:g})",
                as_dicts,
            )
        else:
            after = Release(stable=release.canary, previous=release.stable, stage_since=now)
            event = Event(
                release.canary, PROMOTED, f"checks held through {len(stages)} stages", as_dicts
            )
        return after if self.releases.change(release, after, event) else self.releases.current()

    def publish(self) -> None:
        """Each version's events beside it, for the lineage command: those with events
        since the last call (the controller's own, and operators')."""
        events = self.releases.events()
        by_version: dict[str, list[dict]] = defaultdict(list)
        for event in events:
            by_version[event["version"]].append(event)
        for version in {e["version"] for e in events[self._published :]}:
            path = serving_layout.rollout_path(self.settings.base_path, version)
            objects.write(path, json.dumps(by_version[version], indent=1).encode())
        self._published = len(events)

    def run(self, every_s: float, stop) -> None:
        while not stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - one bad tick (store, server down) is retried
                log.exception("rollout tick failed; retrying")
            stop.wait(every_s)
