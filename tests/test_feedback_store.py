"""The feedback store on SQLite and on a real PostgreSQL server: normalisation, review
queue, duplicates, migrations, and claims that neither lose nor reuse a sample."""

from __future__ import annotations

import json
import sqlite3

import pytest

from contract import paths
from serving.feedback import store as store_module
from serving.feedback.normalize import Feedback, FeedbackError, parse_feedback
from serving.feedback.store import FeedbackStore, known_tags
from tests.commands import app_python, run_module
from tests.postgres_server import postgres_server

KNOWN = known_tags(paths.schema_path())


def feedback_cli(*args: str, check: bool = True):
    """`python -m serving.feedback ARGS`, from the app's own virtualenv (as in its image)."""
    return run_module("-m", "serving.feedback", *args, check=check, python=app_python())


@pytest.fixture(scope="module")
def postgres_url():
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'feedback.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
        import psycopg

        database = f"t{abs(hash(request.node.name)) % 10**8}"
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {database}")
            admin.execute(f"CREATE DATABASE {database}")
        url = url.rsplit("/", 1)[0] + "/" + database
    opened = FeedbackStore(url, KNOWN)
    yield opened
    opened.close()


def feedback(title="How to sort a list in Python", actual=None, **more):
    return parse_feedback({"title": title, "actual": ["python"] if actual is None else actual,
                           **more})  # fmt: skip


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
    assert sum(store.counts().values()) == 0


def test_known_tags_are_accepted_and_duplicates_marked(store):
    first = store.add(feedback())
    again = store.add(feedback(title="how to SORT a list   in python"))
    other = store.add(feedback(actual=["python", "list"]))
    assert (first.status, again.status, other.status) == ("accepted", "duplicate", "accepted")
    assert again.duplicate_of == first.id
    assert store.counts() == {"accepted": 2, "pending_review": 0, "rejected": 0, "duplicate": 1}


def test_unknown_tags_wait_for_review_and_decisions_release_them(store):
    waiting = store.add(feedback(title="Borrow checker fights", actual=["rust", "pointers"]))
    also = store.add(feedback(title="Pattern matching on enums", actual=["rust"]))
    typo = store.add(feedback(title="jquery each", actual=["jqeury"]))
    assert waiting.status == "pending_review" and waiting.unknown_tags == ("rust",)
    assert store.claimable() == 0  # never trained on before a person decides
    queue = {row["tag"]: row for row in store.review_queue()}
    assert queue["rust"]["samples_waiting"] == 2 and queue["rust"]["status"] == "pending_review"
    assert store.decide("rust", accept=False) == 2
    assert store.decide("jqeury", accept=True, alias_of="jquery") == 1
    assert store.counts()["rejected"] == 1 and store.counts()["accepted"] == 2
    claimed = {s.id: s.actual for s in store.claim()[1]}
    assert claimed == {waiting.id: ("pointers",), typo.id: ("jquery",)}
    assert also.id not in claimed
    later = store.add(feedback(title="more rust", actual=["Rust", "jqeury"]))
    assert later.status == "accepted"  # decisions stand for later feedback


def test_claims_take_each_sample_once(store):
    ids = [store.add(feedback(title=f"question {i}")).id for i in range(5)]
    batch, samples = store.claim()
    assert [s.id for s in samples] == ids
    assert store.claim() is None  # nothing left to claim
    new = store.add(feedback(title="question 5"))
    second, more = store.claim()
    assert second != batch and [s.id for s in more] == [new.id]
    assert [b["id"] for b in store.unfinished_batches()] == [batch, second]
    store.record_span(batch, 3, "ab" * 32)
    store.record_outcome(batch, "blessed", "17", "")
    assert [b["id"] for b in store.unfinished_batches()] == [second]


def test_an_old_schema_is_upgraded_in_place(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = FeedbackStore.__new__(FeedbackStore)
    old.known = KNOWN
    old.dialect, old._connection = store_module._connect(url)
    old._lock = store_module.threading.Lock()
    old.migrate(target=1)  # a store written by the first release
    assert old.schema_version() == 1
    old.add(feedback())
    old.close()
    upgraded = FeedbackStore(url, KNOWN)
    assert upgraded.schema_version() == len(store_module.MIGRATIONS)
    assert upgraded.counts()["accepted"] == 1  # the sample survived
    upgraded.add(feedback(actual=["newtag"]))
    assert upgraded.decide("newtag", accept=True, alias_of="python") == 1
    rows = sqlite3.connect(tmp_path / "old.db").execute("SELECT actual FROM feedback").fetchall()
    assert [json.loads(a) for (a,) in rows] == [["python"], ["python"]]


def test_the_review_command_lists_accepts_and_rejects(tmp_path):

    url = f"sqlite:///{tmp_path / 'f.db'}"
    opened = FeedbackStore(url, KNOWN)
    opened.add(feedback(title="hooks", actual=["reactjs"]))
    opened.add(feedback(title="ownership", actual=["rust", "c++"]))
    opened.close()
    listed = feedback_cli("--feedback", url, "list").stdout
    assert "reactjs" in listed and "rust" in listed and "pending_review" in listed
    out = feedback_cli("--feedback", url, "accept", "reactjs",
                     "--as", "javascript").stdout  # fmt: skip
    assert "1 samples released" in out
    feedback_cli("--feedback", url, "reject", "rust")
    stats = feedback_cli("--feedback", url, "stats").stdout
    assert json.loads(stats)["samples"]["accepted"] == 2
    missing = feedback_cli("--feedback", url, "reject", "zig", check=False)
    assert missing.returncode == 1 and "no tag 'zig'" in missing.stderr
