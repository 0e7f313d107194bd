"""The review queue from the command line.

    python -m serving.feedback list
    python -m serving.feedback accept TAG [--as KNOWN_TAG]
    python -m serving.feedback reject TAG
    python -m serving.feedback stats

The store comes from --feedback or TAGGER_FEEDBACK_URL (default build/feedback.db).
"""

from __future__ import annotations

import argparse
import json
import sys

from contract import paths
from serving.feedback.normalize import FeedbackError
from serving.feedback.store import FeedbackStore, known_tags


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m serving.feedback", description=__doc__.split("\n")[0]
    )
    p.add_argument("--feedback", default=paths.feedback_url(),
                   help="sqlite:///path or postgresql://... (TAGGER_FEEDBACK_URL)")  # fmt: skip
    commands = p.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="tags waiting for review, and decided ones")
    commands.add_parser("stats", help="samples by status, retrain batches")
    accept = commands.add_parser("accept", help="accept a tag (optionally as a known one)")
    accept.add_argument("tag")
    accept.add_argument("--as", dest="alias_of", help="a tag the model knows")
    reject = commands.add_parser("reject", help="reject a tag: it is dropped from samples")
    reject.add_argument("tag")
    args = p.parse_args(argv)
    store = FeedbackStore(args.feedback, known_tags(paths.schema_path()))
    try:
        if args.command == "list":
            for row in store.review_queue():
                alias = f" -> {row['alias_of']}" if row["alias_of"] else ""
                print(f"{row['tag']:<24} {row['status']:<15} {row['samples_waiting']:>5} "
                      f"waiting{alias}")  # fmt: skip
        elif args.command == "stats":
            print(json.dumps({"samples": store.counts(), "batches": store.batches()}, indent=2))
        else:
            changed = store.decide(args.tag, args.command == "accept",
                                   getattr(args, "alias_of", None))  # fmt: skip
            print(f"{args.command}ed {args.tag}: {changed} samples released")
    except KeyError:
        print(f"feedback: error: no tag {args.tag!r} in the review queue", file=sys.stderr)
        return 1
    except FeedbackError as err:
        print(f"feedback: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
