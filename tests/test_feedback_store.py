"""The feedback store on SQLite and on a real PostgreSQL server: normalisation, review
queue, duplicates, migrations, and claims that neither lose nor reuse a sample."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from serving.feedback import tokens
from serving.rollout.state import NothingToDoError, Releases
from store import database, retrain
from store.database import Database
from store.live_quality import LiveQuality, live_quality
from store.releases import Event, Release
from store.samples import Feedback, FeedbackError, parse_feedback
from tests.commands import app_python, run_module
from tests.postgres_server import postgres_server
from tests.stores import KNOWN, Opened

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def feedback_cli(*args: str, check: bool = True):
    """`python -m serving.feedback ARGS`, from the app's own virtualenv (as in its image)."""
    return run_module("-m", "serving.feedback", *args, check=check, python=app_python())


@pytest.fixture(scope="module")
def postgres():
    with postgres_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'feedback.db'}"
    database = f"t{abs(hash(request.node.name)) % 10**8}"
    return request.getfixturevalue("postgres").database(database)


@pytest.fixture
def store(store_url):
    opened = Opened.at(store_url)
    yield opened
    opened.close()


def feedback(title="How to sort a list in Python", actual=None, **more):
    return parse_feedback(
        {"title": title, "actual": ["python"] if actual is None else actual, **more}
    )


def test_tags_are_normalised_and_aliases_followed():
    item = feedback(actual=[" Python ", "C Sharp", "js", "python"], predicted=["java"])
    assert item.actual == ("python", "c#", "javascript")
    assert item.predicted == ("java",)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"title": "t", "actual": ""}, "'actual' must be a list of tag strings, got str"),
        ({"title": "t", "actual": "python"}, "'actual' must be a list of tag strings, got str"),
        ({"title": "t", "actual": []}, "'actual' needs 1 to 5 tags, got 0"),
        ({"title": "t", "actual": [1]}, "a tag must be a string, got int"),
        ({"title": "t", "actual": ["a", "b", "c", "d", "e", "f"]}, "needs 1 to 5 tags, got 6"),
        ({"title": "t", "actual": ["<script>"]}, "is not a tag"),
        ({"title": "", "actual": ["python"]}, "'title' is empty"),
        ({"title": "x" * 301, "actual": ["python"]}, "at most 300"),
        ({"title": 5, "actual": ["python"]}, "'title' must be a string"),
        ({"title": "t", "actual": ["python"], "extra": 1}, "unknown fields: extra"),
        ({"actual": ["python"]}, "missing fields: title"),
        ({"title": "t", "actual": ["python"], "model_version": [1]}, "'model_version' must be"),
    ],
)
def test_bad_feedback_is_refused_with_a_reason(body, message):
    with pytest.raises(FeedbackError, match=message.replace("(", r"\(")):
        parse_feedback(body)


def test_an_empty_correction_never_becomes_a_tag(store):
    # The predecessor split the string "" or "t" into characters; here it cannot get in.
    for bad in ("", "t", "python"):
        with pytest.raises(FeedbackError):
            store.add(feedback(actual=bad))  # a string where the list belongs
        with pytest.raises(TypeError):  # nor can code that skips parsing build one
            Feedback(title="t", predicted=(), actual=bad, model_version=None)
    assert sum(store.feedback.counts().values()) == 0


def test_known_tags_are_accepted_and_duplicates_marked(store):
    first = store.add(feedback())
    again = store.add(feedback(title="how to SORT a list   in python"))
    other = store.add(feedback(actual=["python", "list"]))
    assert (first.status, again.status, other.status) == ("accepted", "duplicate", "accepted")
    assert again.duplicate_of == first.id
    assert store.feedback.counts() == {
        "accepted": 2,
        "pending_review": 0,
        "rejected": 0,
        "duplicate": 1,
        "withdrawn": 0,
    }


def test_unknown_tags_wait_for_review_and_decisions_release_them(store):
    waiting = store.add(feedback(title="Borrow checker fights", actual=["rust", "pointers"]))
    also = store.add(feedback(title="Pattern matching on enums", actual=["rust"]))
    typo = store.add(feedback(title="jquery each", actual=["jqeury"]))
    assert waiting.status == "pending_review" and waiting.unknown_tags == ("rust",)
    assert store.retrain.claimable() == 0  # never trained on before a person decides
    queue = {row["tag"]: row for row in store.review.page()[0]}
    assert queue["rust"]["samples_waiting"] == 2 and queue["rust"]["status"] == "pending_review"
    assert store.review.decide("rust", accept=False) == 2
    assert store.review.decide("jqeury", accept=True, alias_of="jquery") == 1
    assert store.feedback.counts()["rejected"] == 1 and store.feedback.counts()["accepted"] == 2
    claimed = {s.id: s.actual for s in store.retrain.claim()[1]}
    assert claimed == {waiting.id: ("pointers",), typo.id: ("jquery",)}
    assert also.id not in claimed
    later = store.add(feedback(title="more rust", actual=["Rust", "jqeury"]))
    assert later.status == "accepted"  # decisions stand for later feedback


def unfinished(store: Opened) -> list[int]:
    return [b["id"] for b in store.retrain.batches() if b["outcome"] is None]


def test_claims_take_each_sample_once(store):
    ids = [store.add(feedback(title=f"question {i}")).id for i in range(5)]
    batch, samples = store.retrain.claim()
    assert [s.id for s in samples] == ids
    assert store.retrain.claim() is None  # nothing left to claim
    new = store.add(feedback(title="question 5"))
    second, more = store.retrain.claim()
    assert second != batch and [s.id for s in more] == [new.id]
    assert unfinished(store) == [batch, second]
    store.retrain.record_span(batch, 3, "ab" * 32)
    store.retrain.record_outcome(batch, "blessed", "17", "")
    assert unfinished(store) == [second]
    assert store.retrain.batches()[0]["span"] == 3


def test_an_old_schema_is_upgraded_in_place(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = Database(url, migrate=False)
    old.migrate(target=1)  # a store written by the first release
    assert old.schema_version() == 1
    with old.transaction() as t:  # a sample as the first release wrote it
        t.run(
            "INSERT INTO feedback (title, title_key, predicted, actual, model_version, "
            "received_at, status) VALUES ('How to sort a list in Python', "
            "'how to sort a list in python', '[]', '[\"python\"]', NULL, 1.7e9, 'accepted')"
        )
    old.close()
    upgraded = Opened.at(url)
    assert upgraded.db.schema_version() == len(database.MIGRATIONS)
    assert upgraded.feedback.counts()["accepted"] == 1  # the sample survived
    upgraded.add(feedback(actual=["newtag"]))
    assert upgraded.review.decide("newtag", accept=True, alias_of="python") == 1
    rows = sqlite3.connect(tmp_path / "old.db").execute("SELECT actual FROM feedback").fetchall()
    assert [json.loads(a) for (a,) in rows] == [["python"], ["python"]]


def load_v4_copy(url: str, dialect: str) -> None:
    """A copy of a database as the store of schema version 4 wrote it (a dump of one,
    tests/fixtures/feedback_store_v4.sql), loaded into an empty database."""
    dump = (FIXTURES / "feedback_store_v4.sql").read_text()
    statements = [s.strip() for s in dump.split(";\n") if s.strip()]
    skip = ("PRAGMA", "BEGIN", "COMMIT")  # the dump's own transaction: this one replaces it
    if dialect == "postgresql":
        skip += ("DELETE FROM sqlite_sequence", "INSERT INTO sqlite_sequence")
    db = Database(url, migrate=False)
    with db.transaction() as t:
        for statement in statements:
            if statement.startswith(skip):
                continue
            if dialect == "postgresql":
                statement = statement.replace(
                    "INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY"
                )
            t.run(statement)
        if dialect == "postgresql":  # the sequences as PostgreSQL itself would have left them
            for table in ("feedback", "retrain", "rollout_event"):
                t.run(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT MAX(id) FROM {table}))"
                )
    db.close()


def test_a_database_of_the_previous_schema_upgrades_in_place(store_url):
    dialect = "postgresql" if store_url.startswith("postgresql") else "sqlite"
    load_v4_copy(store_url, dialect)
    upgraded = Opened.at(store_url)
    try:
        assert upgraded.db.schema_version() == len(database.MIGRATIONS)
        # Every kind of row the old store kept is read back through today's functions.
        assert upgraded.feedback.counts() == {
            "accepted": 3,
            "pending_review": 1,
            "rejected": 0,
            "duplicate": 1,
            "withdrawn": 1,
        }
        assert [(b["id"], b["span"], b["outcome"]) for b in upgraded.retrain.batches()] == [
            (1, 1, "blessed")
        ]
        queue = upgraded.review.page()[0]  # the waiting samples, found by the migration
        assert [(r["tag"], r["samples_waiting"]) for r in queue] == [("jqeury", 0), ("rust", 1)]
        assert tokens.lookup(upgraded.db, "sot_fixture-reviewer-token") == ("alice", "reviewer")
        release = Releases(upgraded.db, "tagger")
        assert (release.current().stable, release.current().canary) == ("3", "4")
        assert [e["action"] for e in release.events()] == ["adopted", "canary"]
        assert live_quality(upgraded.db, ["3"])["3"] == LiveQuality(2, 1, 1, 1)
        assert upgraded.db.setting("source_key", lambda: "new") == "00" * 32
        # And it keeps working: new samples get the next ids, decisions release old ones.
        new = upgraded.add(feedback(title="A question after the upgrade"))
        assert new.id == 7 and new.status == "accepted"
        assert upgraded.review.decide("rust", accept=True, alias_of="c++") == 1
        assert upgraded.retrain.claimable(batch_size=10) == 2
    finally:
        upgraded.close()


def test_the_review_command_lists_accepts_and_rejects(tmp_path):

    url = f"sqlite:///{tmp_path / 'f.db'}"
    opened = Opened.at(url)
    opened.add(feedback(title="hooks", actual=["reactjs"]))
    opened.add(feedback(title="ownership", actual=["rust", "c++"]))
    opened.close()
    listed = feedback_cli("--feedback", url, "list").stdout
    assert "reactjs" in listed and "rust" in listed and "pending_review" in listed
    out = feedback_cli("--feedback", url, "accept", "reactjs", "--as", "javascript").stdout
    assert "1 samples released" in out
    feedback_cli("--feedback", url, "reject", "rust")
    stats = feedback_cli("--feedback", url, "stats").stdout
    assert json.loads(stats)["samples"]["accepted"] == 2
    missing = feedback_cli("--feedback", url, "reject", "zig", check=False)
    assert missing.returncode == 1 and "no tag 'zig'" in missing.stderr


def sent_by(source: str, title: str, actual=None) -> Feedback:
    return dataclasses.replace(feedback(title=title, actual=actual), source=source)


def test_no_source_holds_more_than_its_share_of_a_batch_and_the_rest_waits(store):
    for i in range(20):
        store.add(sent_by(f"person-{i:02d}", f"question {i}"))
    for i in range(100):  # one client's flood, each title a little different
        store.add(sent_by("flood", f"how do I sort a list in python, take {i}"))
    assert store.retrain.claimable(batch_size=20, share=0.1) == 20
    batch, samples = store.retrain.claim(batch_size=20, share=0.1)
    from_flood = [s for s in samples if s.source == "flood"]
    assert len(samples) == 20 and len(from_flood) == 2  # 2 of 20: the flood's 10 %
    assert [s.source for s in samples if s.source != "flood"] == [
        f"person-{i:02d}" for i in range(18)
    ]  # each source's oldest, sources in turn
    # Left: two people and the flood, whose share of a batch is 2: not enough for one.
    assert store.retrain.claimable(batch_size=20, share=0.1) == 4
    assert store.retrain.claim(batch_size=20, share=0.1) is None
    assert store.feedback.counts()["accepted"] == 120  # nothing was dropped: the rest waits


def test_each_batch_starts_where_the_last_stopped_so_every_source_gets_its_turn(store):
    for source in ("a", "b", "c", "d"):
        for i in range(5):
            store.add(sent_by(source, f"{source} asks question {i}"))
    takes = []
    for _ in range(4):  # each batch takes two sources' two oldest samples
        _, samples = store.retrain.claim(batch_size=4, share=0.5)
        takes.append("".join(sorted({s.source for s in samples})))
    assert takes == ["ab", "cd", "ab", "cd"]
    # A flood of one source never hides the others: the next batch goes on from "d"
    # to the flood (its share only) and the new source, then wraps around to "a".
    for i in range(300):
        store.add(sent_by("flood", f"flood question {i}"))
    store.add(sent_by("late", "a question from a new source"))
    _, samples = store.retrain.claim(batch_size=4, share=0.5)
    assert sorted(s.source for s in samples) == ["a", "flood", "flood", "late"]


def test_releasing_held_samples_runs_the_duplicate_check(store):
    first = [store.add(sent_by("a", "Lifetimes in rust", ["rust"])) for _ in range(50)]
    assert {s.status for s in first} == {"pending_review"}
    assert store.review.decide("rust", accept=True, alias_of="c++") == 50
    assert store.feedback.counts()["accepted"] == 1 and store.feedback.counts()["duplicate"] == 49
    (only,) = store.retrain.claim()[1]
    assert (only.id, only.actual) == (first[0].id, ("c++",))


def test_the_review_queue_is_bounded_per_source_and_paged(store_url):
    store = Opened.at(store_url, review_per_source=5)
    try:
        held = [store.add(sent_by("junk", f"t{i}", [f"junk{i}"])) for i in range(6)]
        assert [s.status for s in held[:5]] == ["pending_review"] * 5
        assert held[5].id is None and "5 samples from this client" in held[5].refused
        assert store.add(sent_by("junk", "known tags still go in", ["python"])).id is not None
        assert store.add(sent_by("someone else", "zig comptime", ["zig"])).status == (
            "pending_review"
        )
        pages, after = [], None
        while True:
            rows, after = store.review.page(limit=2, after=after)
            pages.append([row["tag"] for row in rows])
            if after is None:
                break
        assert pages == [["junk0", "junk1"], ["junk2", "junk3"], ["junk4", "zig"]]
        row = store.review.page(after="junk3", limit=1)[0][0]
        assert (row["tag"], row["samples_waiting"], row["examples"]) == ("junk4", 1, ["t4"])
        assert row["top_sources"] == [{"source": "junk", "samples": 1}]
    finally:
        store.close()


def test_a_new_tag_accepted_without_alias_waits_for_the_schema_to_have_it(store_url):
    store = Opened.at(store_url)
    held = store.add(sent_by("a", "Ownership and borrowing", ["rust", "c++"]))
    assert store.review.decide("rust", accept=True) == 0  # accepted, but the model has no such tag
    assert store.retrain.claimable() == 0
    store.close()
    # A reviewed change adds the tag to the schema; the store opened with it releases them.
    reopened = Opened.at(store_url, KNOWN | {"rust"})
    try:
        (sample,) = reopened.retrain.claim()[1]
        assert (sample.id, sample.actual) == (held.id, ("c++", "rust"))
    finally:
        reopened.close()


def test_withdrawing_a_source_takes_its_waiting_and_claimed_samples_out(store):
    kept = store.add(sent_by("good", "a fine question"))
    claimed = store.add(sent_by("bad", "a poisoned question"))
    batch, _ = store.retrain.claim(batch_size=2)
    store.retrain.record_span(batch, 1, "ab" * 32)
    waiting = store.add(sent_by("bad", "another poisoned one"))
    assert store.feedback.withdraw_source("bad", "spam", by="op") == {
        "source": "bad",
        "waiting": 1,
        "in_batches": 1,
    }
    assert [s.id for s in store.retrain.samples(batch)] == [kept.id]
    assert store.feedback.withdrawn_in_batches() == {batch: {claimed.id}}
    assert store.retrain.claimable() == 0 and waiting.id not in [
        s.id for s in store.retrain.samples(batch)
    ]
    listed = {row["source"]: row for row in store.feedback.sources()}
    assert listed["bad"]["withdrawn"] == 2 and listed["good"]["accepted"] == 1


def test_the_review_queue_counts_only_what_still_waits(store):
    store.add(sent_by("spammer", "zig one", ["ziglang"]))
    store.add(sent_by("spammer", "zig two", ["ziglang", "python"]))
    store.add(sent_by("honest", "zig three", ["ziglang"]))
    (row,) = store.review.page()[0]
    assert (row["samples_waiting"], row["sources"]) == (3, 2)
    assert row["top_sources"][0] == {"source": "spammer", "samples": 2}
    store.feedback.withdraw_source("spammer", "spam")
    (row,) = store.review.page()[0]
    assert (row["samples_waiting"], row["sources"], row["examples"]) == (1, 1, ["zig three"])
    assert store.review.decide("ziglang", accept=True, alias_of="python") == 1
    (row,) = store.review.page()[0]
    assert row["samples_waiting"] == 0 and store.retrain.claimable(batch_size=5) == 1


def test_a_failed_batch_gives_its_samples_back_a_bounded_number_of_times(store):
    sample = store.add(feedback(title="worth another try"))
    for _ in range(retrain.MAX_ATTEMPTS):
        batch, samples = store.retrain.claim()
        assert [s.id for s in samples] == [sample.id]
        store.retrain.give_back(batch, [sample.id])
        store.retrain.record_outcome(batch, "failed", None, "boom")
    assert store.retrain.claimable() == 0 and store.retrain.claim() is None


def test_a_batch_is_leased_to_the_worker_that_claimed_it(store):
    store.add(feedback(title="leased"))
    batch, _ = store.retrain.claim(worker="a", lease_s=3600)
    assert store.retrain.take_unfinished("b", 3600) is None  # a's lease holds
    assert store.retrain.take_unfinished("a", 3600) == batch  # a restarted resumes at once
    with store.db.transaction() as t:  # a's lease runs out (its pod is gone)
        t.run("UPDATE retrain SET lease_until = 0 WHERE id = ?", (batch,))
    assert store.retrain.take_unfinished("b", 3600) == batch
    assert store.retrain.take_unfinished("a", 3600) is None


def test_two_workers_claiming_at_once_put_each_sample_in_exactly_one_batch(store_url):
    stores = [Opened.at(store_url) for _ in range(2)]
    try:
        ids = {
            s.id
            for s in stores[0].feedback.add_many(
                [sent_by(f"s{i % 40}", f"question {i}") for i in range(400)]
            )
        }
        claimed: list[list[int]] = [[], []]
        errors: list[BaseException] = []

        def claim_all(n: int) -> None:
            try:
                while (found := stores[n].retrain.claim(batch_size=5, worker=f"w{n}")) is not None:
                    claimed[n].extend(s.id for s in found[1])
                    time.sleep(0.001)
                    stores[0].add(sent_by(f"late{n}", f"late {len(claimed[n])} {n}"))
            except BaseException as err:  # noqa: BLE001 - reported below
                errors.append(err)

        threads = [threading.Thread(target=claim_all, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        every = claimed[0] + claimed[1]
        assert len(every) == len(set(every))  # no sample in two batches
        assert ids <= set(every)  # and none left behind
    finally:
        for opened in stores:
            opened.close()


def test_two_instances_adding_the_same_new_tag_at_once_both_succeed(store_url):
    stores = [Opened.at(store_url) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    results, errors = [], []

    def add(n: int) -> None:
        try:
            barrier.wait(10)
            results.append(stores[n].add(sent_by(f"s{n}", f"title {n}", ["brandnew"])).status)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    try:
        threads = [threading.Thread(target=add, args=(n,)) for n in range(len(stores))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not errors, errors
        assert results == ["pending_review"] * len(stores)
        rows, _ = stores[0].review.page()
        assert [(r["tag"], r["samples_waiting"]) for r in rows] == [("brandnew", len(stores))]
    finally:
        for opened in stores:
            opened.close()


def test_tokens_are_stored_as_hashes_listed_and_revoked(store_url, tmp_path):
    store = Opened.at(store_url)
    try:
        token = tokens.create(store.db, "alice", "reviewer")
        assert token.startswith("sot_") and len(token) > 40
        assert tokens.lookup(store.db, token) == ("alice", "reviewer")
        assert tokens.lookup(store.db, token + "x") is None
        with store.db.transaction() as t:
            stored = t.run("SELECT * FROM api_token").fetchall()
        assert token not in repr(stored)  # only its hash is kept
        with pytest.raises(ValueError, match="exists"):
            tokens.create(store.db, "alice", "operator")
        with pytest.raises(ValueError, match="role"):
            tokens.create(store.db, "bob", "admin")
        tokens.revoke(store.db, "alice")
        assert tokens.lookup(store.db, token) is None
        assert [(t["role"], bool(t["revoked_at"])) for t in tokens.listed(store.db)] == [
            ("reviewer", True)
        ]
        again = tokens.create(store.db, "alice", "operator")  # the name is free again
        assert tokens.lookup(store.db, again) == ("alice", "operator")
    finally:
        store.close()


def test_the_token_and_source_commands(tmp_path):
    url = f"sqlite:///{tmp_path / 'f.db'}"
    token = feedback_cli(
        "--feedback", url, "token", "create", "--role", "operator", "--name", "ops"
    ).stdout.strip()
    opened = Opened.at(url)
    assert tokens.lookup(opened.db, token) == ("ops", "operator")
    opened.add(sent_by("client:abc", "spam one"))
    opened.add(sent_by("client:abc", "spam two"))
    opened.close()
    assert "ops" in feedback_cli("--feedback", url, "token", "list").stdout
    assert "client:abc" in feedback_cli("--feedback", url, "sources").stdout
    out = feedback_cli("--feedback", url, "withdraw-source", "client:abc", "--reason", "spam")
    assert "2 waiting samples" in out.stdout
    again = feedback_cli(
        "--feedback", url, "withdraw-source", "client:abc", "--reason", "x", check=False
    )
    assert again.returncode == 1 and "no samples from source" in again.stderr
    feedback_cli("--feedback", url, "token", "revoke", "ops")
    missing = feedback_cli("--feedback", url, "token", "revoke", "ops", check=False)
    assert missing.returncode == 1 and "no active token named 'ops'" in missing.stderr


def test_live_quality_counts_each_served_versions_decisions_against_the_corrections(store):
    def served(version, source, predicted, actual, title):
        item = dataclasses.replace(
            feedback(title, actual, predicted=predicted), source=source, served_version=version
        )
        return store.add(item)

    served("3", "a", ["python"], ["python", "pandas"], "read csv with pandas")  # TP 1, FN 1
    served("3", "b", ["java", "python"], ["python"], "sort a list")  # TP 1, FP 1
    served("4", "a", ["java"], ["python"], "list comprehension")  # FP 1, FN 1
    withdrawn = served("4", "c", ["python"], ["python"], "merge two dicts")
    store.feedback.withdraw_source("c", "test")
    for i in range(25):  # one source beyond its cap: only its newest 20 count
        served("5", "flood", [], ["python"], f"question number {i}")
    live = live_quality(store.db, ["3", "4", "5"])
    assert live["3"] == LiveQuality(
        samples=2, true_positives=2, false_positives=1, false_negatives=1
    )
    assert live["3"].f1 == pytest.approx(4 / 6) and live["3"].precision == pytest.approx(2 / 3)
    assert live["4"] == LiveQuality(1, 0, 1, 1) and withdrawn.id is not None
    assert live["5"].samples == 20 and live["5"].recall == 0.0


def test_the_release_moves_only_from_the_state_its_writer_saw(store):
    releases = Releases(store.db, "tagger")
    start = releases.current()
    assert start == Release() and releases.event_counts()["promoted"] == 0
    adopted = Release(stable="3", stage_since=1.0)
    assert releases.change(start, adopted, Event("3", "adopted", "first"))
    canary = Release(stable="3", canary="4", mode="shadow", stage_since=2.0)
    assert releases.change(adopted, canary, Event("4", "canary", "pushed"))
    assert not releases.change(adopted, Release(stable="9"), None)  # someone moved it first
    assert releases.current() == canary
    promoted = releases.promote("ops@example.com", "looks right")
    assert (promoted.stable, promoted.canary, promoted.previous) == ("4", None, "3")
    assert releases.statuses() == {"3": "retired", "4": "stable"}
    with pytest.raises(NothingToDoError, match="no canary to roll back"):
        releases.rollback("ops@example.com", "nothing there")
    events = releases.events()
    assert [(e["version"], e["action"], e["actor"]) for e in events] == [
        ("3", "adopted", "controller"),
        ("4", "canary", "controller"),
        ("4", "promoted", "ops@example.com"),
    ]
    assert releases.events("3")[0]["reason"] == "first"


def test_the_counts_by_status_stay_those_of_the_rows_through_every_change(store_url):
    store = Opened.at(store_url)
    try:
        store.add(sent_by("a", "sort a list"))
        store.add(sent_by("b", "sort a list"))  # a duplicate
        store.add(sent_by("a", "zig comptime", ["ziglang"]))
        store.add(sent_by("c", "zig allocators", ["ziglang", "python"]))
        store.add(sent_by("c", "odin lang", ["odinlang"]))
        store.review.decide("ziglang", accept=False)  # released: one rejected, one accepted
        store.feedback.withdraw_source("c", "spam")
        with store.db.transaction() as t:
            rows = t.run("SELECT status, COUNT(*) FROM feedback GROUP BY status").fetchall()
        counted = {**dict.fromkeys(store.feedback.counts(), 0), **dict(rows)}
        assert store.feedback.counts() == counted
        assert counted == {"accepted": 1, "pending_review": 0, "rejected": 1, "duplicate": 1,
                           "withdrawn": 2}  # fmt: skip
    finally:
        store.close()
