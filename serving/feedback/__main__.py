"""The feedback store from the command line: review queue, sources, access tokens.

    python -m serving.feedback list [--status pending_review]
    python -m serving.feedback accept TAG [--as KNOWN_TAG]
    python -m serving.feedback reject TAG
    python -m serving.feedback stats
    python -m serving.feedback sources
    python -m serving.feedback withdraw-source SOURCE --reason TEXT
    python -m serving.feedback token create --role reviewer|operator --name NAME
    python -m serving.feedback token list
    python -m serving.feedback token revoke NAME

The store comes from --feedback or TAGGER_FEEDBACK_URL (default build/feedback.db).
Decisions and withdrawals made here are recorded as made by `cli:$USER`.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from contract import paths
from serving.feedback import tokens
from store.database import Database, StoreUnavailableError
from store.feedback import FeedbackStore
from store.retrain import RetrainQueue
from store.review import ReviewQueue
from store.samples import FeedbackError
from store.vocabulary import known_tags


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m serving.feedback", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "--feedback",
        default=paths.feedback_url(),
        help="sqlite:///path or postgresql://... (TAGGER_FEEDBACK_URL)",
    )
    commands = p.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="tags waiting for review, and decided ones")
    listing.add_argument("--status", help="only tags with this status (e.g. pending_review)")
    commands.add_parser("stats", help="samples by status, retrain batches")
    accept = commands.add_parser("accept", help="accept a tag (optionally as a known one)")
    accept.add_argument("tag")
    accept.add_argument("--as", dest="alias_of", help="a tag the model knows")
    reject = commands.add_parser("reject", help="reject a tag: it is dropped from samples")
    reject.add_argument("tag")
    commands.add_parser("sources", help="who sent feedback, with counts by status")
    withdraw = commands.add_parser(
        "withdraw-source", help="take all of one source's samples out of training"
    )
    withdraw.add_argument("source")
    withdraw.add_argument("--reason", required=True)
    token = commands.add_parser("token", help="access tokens for reviewers and operators")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    create = token_commands.add_parser("create", help="make a token; it is printed once")
    create.add_argument("--role", required=True, choices=tokens.ISSUED_ROLES)
    create.add_argument("--name", required=True, help="who or what holds it")
    token_commands.add_parser("list", help="tokens by name, role and state")
    revoke = token_commands.add_parser("revoke", help="revoke a token by its name")
    revoke.add_argument("name")
    return p


def _run(db: Database, args: argparse.Namespace) -> None:
    by = f"cli:{getpass.getuser()}"
    known = known_tags(paths.schema_path())
    feedback, review = FeedbackStore(db, known), ReviewQueue(db, known)
    review.release_known()  # tags a reviewed schema change has added
    if args.command == "list":
        after = None
        while True:
            rows, after = review.page(args.status, after, limit=200)
            for row in rows:
                alias = f" -> {row['alias_of']}" if row["alias_of"] else ""
                print(
                    f"{row['tag']:<24} {row['status']:<15} {row['samples_waiting']:>5} "
                    f"waiting from {row['sources']} sources{alias}"
                )
            if after is None:
                break
    elif args.command == "stats":
        batches = RetrainQueue(db, known).batches()
        print(json.dumps({"samples": feedback.counts(), "batches": batches}, indent=2))
    elif args.command == "sources":
        for row in feedback.sources():
            print(
                f"{row['source']:<40} {row['samples']:>6} samples  accepted {row['accepted']}"
                f"  pending {row['pending_review']}  withdrawn {row['withdrawn']}"
            )
    elif args.command == "withdraw-source":
        done = feedback.withdraw_source(args.source, args.reason, by)
        if not done["waiting"] and not done["in_batches"]:
            raise ValueError(f"no samples from source {args.source!r} to withdraw")
        print(
            f"withdrew {args.source}: {done['waiting']} waiting samples, "
            f"{done['in_batches']} in retrain batches (the learning worker rewrites their "
            "spans without them)"
        )
    elif args.command == "token":
        if args.token_command == "create":
            print(tokens.create(db, args.name, args.role))
        elif args.token_command == "list":
            for row in tokens.listed(db):
                state = "revoked" if row["revoked_at"] else "active"
                print(f"{row['name']:<40} {row['role']:<9} {state}")
        else:
            try:
                tokens.revoke(db, args.name)
            except KeyError:
                raise ValueError(f"no active token named {args.name!r}") from None
            print(f"revoked {args.name}")
    else:
        try:
            changed = review.decide(
                args.tag, args.command == "accept", getattr(args, "alias_of", None), by
            )
        except KeyError:
            raise ValueError(f"no tag {args.tag!r} in the review queue") from None
        print(f"{args.command}ed {args.tag}: {changed} samples released")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        db = Database(args.feedback)
    except StoreUnavailableError as err:
        print(f"feedback: error: {err}", file=sys.stderr)
        return 1
    try:
        _run(db, args)
    except (FeedbackError, ValueError, StoreUnavailableError) as err:
        print(f"feedback: error: {err}", file=sys.stderr)
        return 1
    finally:
        db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
