"""Releases end to end: our TF Serving stand-in polls the model config the controller
writes, the app splits real traffic by client, people correct the answers they got, and
the controller judges the canary on that evidence. A version that is wrong online is
rolled back by itself; a good one is promoted; stable answers throughout."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from ingest import seed_tsv
from serving.rollout import checks, models_config
from serving.rollout.controller import Controller, Settings, parse_stages
from serving.rollout.evidence import replicas
from serving.rollout.state import CANARY, REJECTED, RETIRED, SHADOW, STABLE, Releases
from store.database import Database
from store.live_quality import LiveQuality, live_quality
from tests.model_server_process import app_server, model_server, wait_for
from tests.tagger_model import build_tagger_model

CLIENTS = 40


@pytest.fixture(scope="module")
def wrong_tagger(tmp_path_factory, data_slice) -> Path:
    """A tagger trained on the same titles with every row given its neighbour's tags: its
    graph and outputs are those of a good one, its answers are not."""
    with open(data_slice / "train.tsv", "rb") as f:
        header, *rows = f.read().splitlines(keepends=True)
    titles = [r.split(b"\t", 1)[0] for r in rows]
    tags = [r.split(b"\t", 1)[1] for r in rows]
    shifted = [t + b"\t" + g for t, g in zip(titles, tags[1:] + tags[:1], strict=True)]
    out = tmp_path_factory.mktemp("wrong")
    (out / "train.tsv").write_bytes(header + b"".join(shifted))
    return build_tagger_model(out / "train.tsv", out / "model", epochs=5)


def true_tags(data_slice: Path) -> list[tuple[str, tuple[str, ...]]]:
    with open(data_slice / "train.tsv", "rb") as f:
        return [(r.title, r.tags) for r in seed_tsv.read_rows(f, seed_tsv.ParseReport())]


class Users(threading.Thread):
    """Clients behind the trusted proxy, each asking for tags and correcting the answer
    to the title's true tags, as long as the test runs. Every reply is kept."""

    def __init__(self, app, labelled: list[tuple[str, tuple[str, ...]]]) -> None:
        super().__init__(daemon=True)
        self.app, self.labelled = app, labelled
        self.answers: list[tuple[float, int, str | None]] = []  # (time, status, version)
        self.stop = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            title, actual = self.labelled[i % len(self.labelled)]
            client = {"X-Forwarded-For": f"203.0.113.{i % CLIENTS}"}
            reply = self.app.post("/api/predict", {"title": title}, headers=client)
            version = reply.json().get("model_version") if reply.status == 200 else None
            self.answers.append((time.time(), reply.status, version))
            if reply.status == 200 and i % 2 == 0:
                given = [t["tag"] for t in reply.json()["tags"]]
                sent = self.app.post(
                    "/api/feedback",
                    {
                        "title": title,
                        "predicted": given,
                        "actual": list(actual),
                        "model_version": version,
                    },
                    headers=client,
                )
                self.answers.append((time.time(), sent.status, version))
            i += 1


def settings_for(
    base: Path, config: Path, model_port: int, metrics_port: int, stages: str
) -> Settings:
    return Settings(
        model="tagger",
        base_path=str(base),
        config_path=str(config),
        model_url=f"http://127.0.0.1:{model_port}",
        metrics_urls=[f"http://127.0.0.1:{metrics_port}/metrics"],
        stages=parse_stages(stages),
        stage_s=1.0,
        grace_s=1.0,
        limits=checks.Limits(min_requests=20, min_feedback=15, min_comparisons=20),
    )


def run_until(controller: Controller, done, timeout: float, timeline: list) -> None:
    deadline = time.monotonic() + timeout
    while not done(controller.releases.current()):
        assert time.monotonic() < deadline, (controller.releases.events(), controller.last_checks)
        controller.tick()
        time.sleep(0.3)
    timeline += controller.releases.events()[len(timeline) :]


def test_a_canary_wrong_online_is_rolled_back_and_a_good_one_promoted(
    tmp_path, tagger_model, wrong_tagger, data_slice
):
    base, config = tmp_path / "serving" / "tagger", tmp_path / "models.config"
    shutil.copytree(tagger_model, base / "7")
    database = tmp_path / "feedback.db"
    store = Database(f"sqlite:///{database}")
    releases, timeline = Releases(store, "tagger"), []
    # Before any server runs: the controller adopts the one version and writes the config.
    Controller(settings_for(base, config, 9, 9, "0.5"), store).tick()  # nothing on port 9
    assert releases.current().stable == "7"
    assert config.read_text() == models_config.render("tagger", str(base), {"7"}, {STABLE: "7"})

    with (
        model_server(
            f"--model_config_file={config}",
            "--model_config_file_poll_wait_seconds=0.2",
            "--file_system_poll_wait_seconds=0.2",
            log_dir=tmp_path,
        ) as models,
        app_server(
            f"--model-url=http://127.0.0.1:{models.port}",
            f"--feedback={database}",
            f"--model-base-path={base}",
            "--trusted-proxy=127.0.0.1/32",
            "--predict-rate=1000",
            "--predict-burst=1000",
            "--feedback-rate=1000",
            "--feedback-burst=1000",
            log_dir=tmp_path,
        ) as app,
    ):
        users = Users(app, true_tags(data_slice))
        users.start()
        try:
            # 1. Version 8, blessed offline in this story, wrong online: canary for half
            # of the clients, until their corrections show its F1 is worse.
            shutil.copytree(wrong_tagger, base / "8")
            wrong = Controller(
                settings_for(base, config, models.port, app.metrics_port, "0.5"), store
            )
            run_until(wrong, lambda r: r.canary == "8", 30, timeline)
            run_until(wrong, lambda r: r.canary is None, 240, timeline)
            rolled_back_at = time.time()
            assert releases.current().stable == "7" and releases.statuses()["8"] == REJECTED
            # Rejected means never again: more ticks do not start it.
            for _ in range(5):
                wrong.tick()
            assert releases.current().canary is None

            # 2. Version 9, a good one: shadow first, then half the clients, then stable.
            shutil.copytree(tagger_model, base / "9")
            good = Controller(
                settings_for(base, config, models.port, app.metrics_port, "shadow,0.5"), store
            )
            run_until(good, lambda r: r.canary == "9", 30, timeline)
            run_until(good, lambda r: r.stable == "9", 300, timeline)
            run_until(good, lambda r: r.previous is None, 30, timeline)
            wait_for(lambda: users.answers[-1][2] == "9", timeout=10)
            page = app.metrics().body.decode()
        finally:
            users.stop.set()
            users.join()

    # Stable answered throughout: no request failed, through every label change.
    assert users.answers and all(status in (200, 201) for _, status, _ in users.answers), [
        a for a in users.answers if a[1] not in (200, 201)
    ]
    # After its rollback (and the grace for answers already routed), 8 answered no one.
    assert not [a for a in users.answers if a[2] == "8" and a[0] > rolled_back_at + 2]
    assert any(a[2] == "8" for a in users.answers), "the canary did answer some clients"

    start = timeline[0]["at"]
    for e in timeline:  # the release's timeline, for a reader running with -s
        print(f"{e['at'] - start:6.1f} s  version {e['version']} {e['action']}: {e['reason']}")
    answered = {v: sum(1 for a in users.answers if a[2] == v) for v in ("7", "8", "9")}
    print(f"replies {len(users.answers)}, all 200/201; answered by version: {answered}")
    actions = [(e["version"], e["action"]) for e in timeline]
    assert actions == [
        ("7", "adopted"),
        ("8", "canary"),
        ("8", "rolled_back"),
        ("9", "canary"),
        ("9", "stage"),
        ("9", "promoted"),
    ]
    rollback = timeline[2]
    assert rollback["actor"] == "controller" and rollback["reason"].startswith("live_f1:")
    assert {c["name"]: c["status"] for c in rollback["checks"]}["live_f1"] == "fail"
    staged = timeline[4]
    assert {c["name"]: c["status"] for c in staged["checks"]}["agreement"] == "pass"
    assert releases.statuses() == {"7": RETIRED, "8": REJECTED, "9": STABLE}

    # The lineage record beside each version, and the metrics.
    beside = json.loads((base / "rollout" / "8.json").read_text())
    assert [e["action"] for e in beside] == ["canary", "rolled_back"]
    assert 'stackoverflow_tagger_rollout_events_total{action="rolled_back"} 1' in page
    assert 'stackoverflow_tagger_rollout_events_total{action="promoted"} 1' in page
    assert 'stackoverflow_tagger_served_version{label="stable"} 9' in page
    live = live_quality(store, ["7", "8", "9"])
    assert live["8"].f1 < live["7"].f1 - 0.2, live
    assert f'stackoverflow_tagger_live_f1{{version="8"}} {live["8"].f1!r}' in page
    assert config.read_text() == models_config.render("tagger", str(base), {"9"}, {STABLE: "9"})
    store.close()


def test_live_f1_compares_the_two_f1s_with_their_spread_over_samples():
    limits = checks.Limits(min_feedback=30)
    # F1 as sum(2TP) / sum(2TP + FP + FN) over samples of (TP, FP, FN): canary 60/100 from
    # 20 x (1, 1, 1) + 10 x (1, 0, 0); stable 80/100 from 10 x (2, 1, 1) + 20 x (1, 0, 0).
    # By hand: residuals x - F1 d are 20 x -0.4 and 10 x 0.8 (canary), 10 x -0.8 and
    # 20 x 0.4 (stable): 9.6 each; variances 30/29 * 9.6 / 100^2 = 9.93e-4 each;
    # z = -0.2 / sqrt(2 * 9.93e-4) = -4.49.
    canary = LiveQuality.of([(1, 1, 1)] * 20 + [(1, 0, 0)] * 10)
    stable = LiveQuality.of([(2, 1, 1)] * 10 + [(1, 0, 0)] * 20)
    assert (canary.f1, stable.f1) == (0.6, 0.8)
    worse = checks.live_f1(canary, stable, limits)
    assert worse.status == checks.FAIL and "z -4.49" in worse.detail
    # 0.7 against 0.8 with every sample all right or all wrong (21 and 24 of 30 samples
    # with 5 tags right, the rest 0 right, 5 wrong, 5 missed): by hand, residuals
    # 21 x 3 and 9 x -7 (630), 24 x 2 and 6 x -8 (480); variances 30/29 * 630 / 300^2 =
    # 7.24e-3 and 5.52e-3; z = -0.1 / sqrt(0.012759) = -0.89: within chance. Counted
    # as independent trials (300 each, the old test) it would have been z -2.83: a failure.
    lumpy_canary = LiveQuality.of([(5, 0, 0)] * 21 + [(0, 5, 5)] * 9)
    lumpy_stable = LiveQuality.of([(5, 0, 0)] * 24 + [(0, 5, 5)] * 6)
    lumpy = checks.live_f1(lumpy_canary, lumpy_stable, limits)
    assert lumpy.status == checks.PASS and "z -0.89" in lumpy.detail
    # The same F1s from samples that all look alike: a real difference, it fails.
    even = checks.live_f1(
        LiveQuality.of([(7, 3, 3)] * 30), LiveQuality.of([(8, 2, 2)] * 30), limits
    )
    assert even.status == checks.FAIL
    # Two equal models on different titles: no failure.
    assert checks.live_f1(stable, stable, limits).status == checks.PASS
    fewer = LiveQuality.of([(1, 0, 0)] * 29)
    assert checks.live_f1(fewer, stable, limits).status == checks.PENDING


def test_the_other_checks_against_hand_counted_evidence():
    limits = checks.Limits()
    assert checks.error_rate(200, 1, limits).status == checks.PASS
    assert checks.error_rate(200, 3, limits).status == checks.FAIL
    assert checks.error_rate(49, 49, limits).status == checks.PENDING
    assert checks.latency(0.040, 0.020, 100, limits).status == checks.PASS  # 40 <= 20*1.5+10
    assert checks.latency(0.041, 0.020, 100, limits).status == checks.FAIL
    assert checks.agreement(30, 50, limits).status == checks.PASS
    assert checks.agreement(29, 50, limits).status == checks.FAIL
    assert checks.skew({"alarm": True, "above": ["title_chars"]}).status == checks.FAIL
    assert checks.skew(None).status == checks.PASS
    with pytest.raises(ValueError, match="stage"):
        parse_stages("shadow,2")
    assert parse_stages("shadow,0.1") == ((SHADOW, 0.0), (CANARY, 0.1))


def test_the_controller_scrapes_each_address_a_name_has_once():
    # "localhost" has an IPv4 and an IPv6 address for one process: counted once.
    assert replicas("http://localhost:9102/metrics") == ["http://127.0.0.1:9102/metrics"]
    assert replicas("http://127.0.0.1:9/m") == ["http://127.0.0.1:9/m"]
