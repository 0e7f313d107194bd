"""The online side with a million stored feedback samples, in SQLite and PostgreSQL.

    make bench-online                      (after `make`: the app needs a model to serve)
    builder/env.sh run python bench/online_at_size.py --samples 1000000 --before e3b0fc0

Fills a database the way a long-lived deployment's would look, then times what runs
over and over against it:
- the learning worker's poll (what Worker.step asks the store when nothing is due:
  the withdrawn samples in written spans, an unfinished batch, and whether a batch's
  worth of samples waits);
- a scrape of the app's /metrics (over HTTP, with the model server running);
- the review queue's first page and a page deep into it (over HTTP, as a reviewer).

The samples (--samples, deterministic): titles from train.tsv, from 20,000 anonymous
sources of Zipf-distributed activity plus 3 floods that together send 15 % of them;
2.5 % carry a made-up tag (3,000 of them) and wait for review, and half of those tags
are decided; 3 % repeat an earlier title; the answering version moves from 1 to 10 in
time order. Every accepted sample but the floods' and the newest 2,000 has been trained
on, in batches of 100. So the queue holds a backlog the floods' share holds back, as it
would after months of hostile traffic.

With --before REV the same runs against the code of that revision too (a git worktree
under build/bench-online/), with a database that revision filled itself, and the two
are printed side by side.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHECKOUT = HERE.parent
REPEATS = 20
BATCH = 100
BACKLOG = 2000  # the newest accepted samples, not yet in a batch


# --- what runs inside the code under test (this checkout's, or another revision's) ----


def fill(url: str, samples: int, train_tsv: str) -> None:
    """Write `samples` feedback samples into the store at url, through the store's own
    functions; then mark most accepted samples trained, as the worker's batches would."""
    from contract import paths
    from store.database import Database
    from store.feedback import FeedbackStore
    from store.review import ReviewQueue
    from store.samples import Feedback
    from store.vocabulary import known_tags

    rng = random.Random(7)
    known = known_tags(paths.schema_path())
    rows = []
    with open(train_tsv, encoding="utf-8") as f:
        next(f)
        for line in f:
            title, tags = line.rstrip("\n").split("\t")
            rows.append((title, tuple(json.loads(tags.replace("'", '"')))))
    sources = [f"client:{n:06d}" for n in range(20_000)]
    weights = [1 / (n + 1) ** 1.1 for n in range(len(sources))]
    floods = [f"client:flood-{k}" for k in range(3)]
    invented = [f"madeup-{n}" for n in range(3000)]
    db = Database(url)
    store = FeedbackStore(db, known, review_per_source=10**9)
    picked = rng.choices(sources, weights, k=samples)
    chunk, done = [], 0
    for n in range(samples):
        if rng.random() < 0.03 and n:
            title, tags = rows[rng.randrange(len(rows))]
        else:
            base, tags = rows[rng.randrange(len(rows))]
            title = f"{base} ({n})"
        actual = list(tags)
        if rng.random() < 0.025:
            actual = actual[:4] + [rng.choice(invented)]
        predicted = tuple(t for t in tags if rng.random() < 0.8)
        source = rng.choice(floods) if rng.random() < 0.15 else picked[n]
        version = str(1 + n * 10 // samples)
        chunk.append(Feedback(title, predicted, tuple(actual), version, source, version))
        if len(chunk) == 5000 or n == samples - 1:
            store.add_many(chunk)
            done += len(chunk)
            chunk = []
            print(f"  filled {done:,} of {samples:,}", end="\r", file=sys.stderr, flush=True)
    review = ReviewQueue(db, known)
    for n, tag in enumerate(invented[:1500]):
        with contextlib.suppress(KeyError):  # a tag no sample drew
            review.decide(tag, n % 2 == 0, "python" if n % 2 == 0 else None, by="bench")
    with db.transaction() as t:
        trainable = [
            i
            for (i,) in t.run(
                "SELECT id FROM feedback WHERE status = 'accepted' AND source NOT LIKE ? "
                "ORDER BY id",
                ("client:flood-%",),
            ).fetchall()
        ][:-BACKLOG]
        for start in range(0, len(trainable), BATCH):
            part = trainable[start : start + BATCH]
            (batch,) = t.run(
                "INSERT INTO retrain (claimed_at, samples, span, span_sha256, finished_at, "
                "outcome, model_version, detail, worker, lease_until) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    1.7e9,
                    len(part),
                    1 + start // BATCH,
                    "ab" * 32,
                    1.7e9,
                    "blessed",
                    "1",
                    "",
                    "w",
                    0,
                ),
            ).fetchone()
            t.run(
                f"UPDATE feedback SET batch_id = ? WHERE id IN ({t.marks(len(part))})",
                (batch, *part),
            )
    db.close()
    print(file=sys.stderr)


def poll_ms(url: str) -> list[float]:
    """The worker's poll when nothing is due (Worker.step up to its claim), timed."""
    from contract import paths
    from store.database import Database
    from store.feedback import FeedbackStore
    from store.retrain import RetrainQueue
    from store.vocabulary import known_tags

    known = known_tags(paths.schema_path())
    db = Database(url)
    queue, feedback = RetrainQueue(db, known), FeedbackStore(db, known)
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        feedback.withdrawn_in_batches()
        queue.take_unfinished("bench", 3600)
        queue.claimable(BATCH, 0.1)
        times.append((time.perf_counter() - started) * 1e3)
    db.close()
    return times


def reviewer(url: str) -> dict:
    """A reviewer's token, made as an operator makes one, and the tags in the queue."""
    from serving.feedback import tokens
    from store.database import Database

    db = Database(url)
    try:
        token = tokens.create(db, f"bench-{time.time_ns()}", tokens.REVIEWER)
        with db.transaction() as t:
            tags = [tag for (tag,) in t.run("SELECT tag FROM tag_review ORDER BY tag").fetchall()]
    finally:
        db.close()
    return {"token": token, "tags": tags}


def inside(argv: list[str]) -> int:
    """`python bench/online_at_size.py --inside WHAT URL ...`, run by main() below with the
    code under test first on the path."""
    what, url = argv[0], argv[1]
    if what == "fill":
        fill(url, int(argv[2]), argv[3])
    elif what == "migrate":
        from store.database import Database

        Database(url).close()
    elif what == "reviewer":
        print(json.dumps(reviewer(url)))
    else:
        print(json.dumps(poll_ms(url)))
    return 0


# --- the bench ---------------------------------------------------------------------------


class Tree:
    """The code under test: this checkout, or a worktree of another revision."""

    def __init__(self, name: str, root: Path) -> None:
        self.name, self.root = name, root

    def python(self, *args: str, python: str = sys.executable, **kwargs):
        env = {**os.environ, "PYTHONPATH": str(self.root)}
        return subprocess.run(
            [python, str(HERE / "online_at_size.py"), "--inside", *args],
            env=env,
            cwd=self.root,
            check=True,
            **kwargs,
        )

    @contextlib.contextmanager
    def process(self, argv: list[str], ready: str, log: Path, python: str = sys.executable):
        env = {**os.environ, "PYTHONPATH": str(self.root)}
        with open(log, "wb") as out:
            child = subprocess.Popen(
                [python, *argv], cwd=self.root, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        try:
            deadline = time.monotonic() + 180
            while ready not in log.read_text(errors="replace"):
                if child.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{argv[:2]} did not start: see {log}")
                time.sleep(0.2)
            yield
        finally:
            child.send_signal(signal.SIGTERM)
            child.wait(60)


def copy_to_postgres(sqlite_path: Path, url: str, tree: Tree) -> None:
    """The SQLite database's rows into an empty PostgreSQL database of the same schema
    (made by the tree's own migrations), then the id sequences past the copied ids."""
    import psycopg

    tree.python("migrate", url)  # the tree's own schema, empty
    source = sqlite3.connect(sqlite_path)
    tables = [
        name
        for (name,) in source.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "AND name <> 'schema_version'"
        )
    ]
    with psycopg.connect(url) as pg:
        for table in tables:
            columns = [row[1] for row in source.execute(f"PRAGMA table_info({table})")]
            pg.execute(f"DELETE FROM {table}")
            with pg.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in source.execute(f"SELECT {', '.join(columns)} FROM {table}"):
                    copy.write_row(row)
            if "id" in columns:
                pg.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
                )
        pg.execute("ANALYZE")


def http_ms(url: str, headers: dict[str, str]) -> list[float]:
    times = []
    for _ in range(REPEATS + 1):
        request = urllib.request.Request(url, headers=headers)
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=60) as reply:
            reply.read()
        times.append((time.perf_counter() - started) * 1e3)
    return times[1:]  # the first warms the app's caches (the quality file, the release)


def measure(tree: Tree, url: str, work: Path, model_url: str) -> dict[str, list[float]]:
    def inside_json(*args: str):
        return json.loads(tree.python(*args, capture_output=True, text=True).stdout)

    found = {"poll": inside_json("poll", url)}
    made = inside_json("reviewer", url)
    token, tags = made["token"], made["tags"]
    port, metrics_port = 18000 + os.getpid() % 1000, 19000 + os.getpid() % 1000
    app = [
        "-m",
        "serving.app",
        f"--port={port}",
        f"--metrics-port={metrics_port}",
        f"--feedback={url}",
        f"--model-url={model_url}",
    ]
    log = work / f"app-{tree.name}.log"
    python = os.environ.get("TAGGER_APP_PYTHON", sys.executable)
    with tree.process(app, "app listening on", log, python):
        found["scrape"] = http_ms(f"http://127.0.0.1:{metrics_port}/metrics", {})
        reviewer = {"Authorization": f"Bearer {token}"}
        page = f"http://127.0.0.1:{port}/api/review/tags?limit=50"
        found["review, first page"] = http_ms(page, reviewer)
        found["review, a page deep in"] = http_ms(f"{page}&after={tags[len(tags) // 2]}", reviewer)
    return found


def worktree(rev: str, work: Path) -> Path:
    where = work / f"code-{rev}"
    if not where.exists():
        subprocess.run(
            ["git", "-C", str(CHECKOUT), "worktree", "add", "--detach", str(where), rev],
            check=True,
            capture_output=True,
        )
    return where


def summary(times: list[float]) -> str:
    return f"{statistics.median(times):8.1f} {max(times):8.1f}"


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--inside":
        return inside(sys.argv[2:])
    from contract import paths, serving_layout
    from tests.model_server_process import model_server
    from tests.postgres_server import postgres_server

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--samples", type=int, default=1_000_000)
    p.add_argument("--before", help="a git revision to measure beside this checkout")
    p.add_argument("--work", type=Path, default=paths.build_dir() / "bench-online")
    p.add_argument("--again", action="store_true", help="measure the --before code again too")
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    trees = [Tree("now", CHECKOUT)]
    if args.before:
        trees.insert(0, Tree(f"before ({args.before})", worktree(args.before, args.work)))
    train = str(paths.data_dir() / "train.tsv")
    # What a revision's code measured is kept (it does not change); this checkout's is
    # measured each time.
    kept = args.work / f"results-{args.samples}.json"
    stored = json.loads(kept.read_text()) if kept.exists() else {}
    results: dict[tuple[str, str], dict[str, list[float]]] = {}
    with (
        postgres_server() as pg,
        model_server(
            f"--model_name={serving_layout.MODEL_NAME}",
            f"--model_base_path={paths.serving_model_dir()}",
            log_dir=args.work,
        ) as models,
    ):
        model_url = f"http://127.0.0.1:{models.port}"
        for n, tree in enumerate(trees):
            if tree.name != "now" and not args.again and tree.name in stored:
                for kind, found in stored[tree.name].items():
                    results[(tree.name, kind)] = found
                continue
            sqlite_path = args.work / f"feedback-{n}-{args.samples}.db"
            if not sqlite_path.exists():
                print(f"{tree.name}: filling {sqlite_path} ...", file=sys.stderr, flush=True)
                started = time.monotonic()
                partial = sqlite_path.with_suffix(".partial")
                partial.unlink(missing_ok=True)
                tree.python("fill", f"sqlite:///{partial}", str(args.samples), train)
                shutil.move(partial, sqlite_path)
                print(f"  {time.monotonic() - started:.0f} s", file=sys.stderr)
            pg_url = pg.database(f"bench{n}")
            copy_to_postgres(sqlite_path, pg_url, tree)
            for kind, url in (("SQLite", f"sqlite:///{sqlite_path}"), ("PostgreSQL", pg_url)):
                print(f"{tree.name}, {kind}: measuring", file=sys.stderr, flush=True)
                results[(tree.name, kind)] = measure(tree, url, args.work, model_url)
                stored.setdefault(tree.name, {})[kind] = results[(tree.name, kind)]
                kept.write_text(json.dumps(stored))
    print(f"\n{args.samples:,} stored feedback samples; ms, median and max of {REPEATS}")
    header = "".join(
        f" | {tree.name}, {kind}" for tree in trees for kind in ("SQLite", "PostgreSQL")
    )
    print(f"| operation{header} |")
    print("|---" * (1 + 2 * len(trees)) + "|")
    for what in results[(trees[-1].name, "SQLite")]:
        cells = "".join(
            f" | {summary(results[(tree.name, kind)][what])}"
            for tree in trees
            for kind in ("SQLite", "PostgreSQL")
        )
        print(f"| {what}{cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
