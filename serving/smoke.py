"""python -m serving.smoke URL [--expect-version V] [--token T]: after a deployment, one
title through the public entry point gets tags, from the version expected.

Standard library only, so CD runs it with the runner's own Python. Behind IAP, --token is
an OIDC token for IAP's client ID (gcloud auth print-identity-token --audiences=...).
Exit 0 when it holds; otherwise 1 with one line that says what did not.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request

TITLE = "How do I read a CSV file into a pandas DataFrame in Python?"


def check(url: str, expect_version: str | None, token: str | None, timeout: float) -> str:
    """What answered, or raises AssertionError with the reason it is not right."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        f"{url.rstrip('/')}/api/predict",
        method="POST",
        data=json.dumps({"title": TITLE}).encode(),
        headers=headers,
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            answer = json.loads(reply.read())
    except urllib.error.HTTPError as err:
        raise AssertionError(f"/api/predict answered {err.code}: {err.read()[:200]!r}") from None
    except OSError as err:
        raise AssertionError(f"{url} did not answer: {err}") from None
    if not answer.get("tags"):
        raise AssertionError(f"no tags for {TITLE!r}: {answer}")
    version = str(answer.get("model_version"))
    if expect_version is not None and version != expect_version:
        raise AssertionError(f"version {version} answered, not the deployed {expect_version}")
    tags = ", ".join(t["tag"] for t in answer["tags"])
    return f"version {version} answered: {tags}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m serving.smoke", description=__doc__.split("\n")[0])
    p.add_argument("url")
    p.add_argument("--expect-version")
    p.add_argument("--token")
    p.add_argument("--timeout", type=float, default=30.0)
    args = p.parse_args(argv)
    try:
        print(f"smoke: {check(args.url, args.expect_version, args.token, args.timeout)}")
    except AssertionError as err:
        print(f"smoke: FAILED: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
