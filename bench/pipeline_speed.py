"""Speed: per-component wall time of the latest pipeline run, from ML Metadata.

    make bench-speed        (after a full, uncached `make`; reads build/metadata.sqlite)

Prints each component's wall time (execution created -> last updated, as ML Metadata
recorded it) beside the 5-minute target for the whole pipeline on 2 cores.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from contract import paths
from pipeline import metadata

TARGET_SECONDS = 300


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--metadata", type=Path, default=paths.metadata_path())
    args = parser.parse_args()
    run_id, nodes = metadata.latest_run(metadata.sqlite_store(str(args.metadata)))
    span = (max(n.finished_ms for n in nodes) - min(n.started_ms for n in nodes)) / 1000
    print(f"run {run_id}")
    print(f"{'component':<32} {'state':<8} {'seconds':>8} {'share':>6}")
    busy = sum(n.seconds for n in nodes)
    for n in sorted(nodes, key=lambda n: -n.seconds):
        print(f"{n.node:<32} {n.state:<8} {n.seconds:>8.1f} {n.seconds / busy:>6.0%}")
    print(f"{'sum of components':<41} {busy:>8.1f}")
    print(
        f"{'first start -> last finish':<41} {span:>8.1f}   target <= {TARGET_SECONDS} s: "
        f"{'met' if span <= TARGET_SECONDS else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
