"""What a person sees while the pipeline runs: one line per component, then the outcome.

    SpanExampleGen                   ran        11.2 s
    ...
    pushed version 1795534451 to build/serving/tagger/1795534451

Both runners print these lines; the local one reads the states from ML Metadata while
the run goes on, the Vertex one from the PipelineJob's task details. Everything else
(TensorFlow's, Beam's and TFX's own logging) goes to the log file whose path is printed.
The facts come from pipeline/metadata.py (ML Metadata) and pipeline/evaluation.py (TFMA);
this module only words them.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

from ml_metadata import metadata_store

from contract import metadata_names as names
from pipeline import evaluation, metadata

MAX_ERROR_LINES = 12
_TRACEBACK_FRAME = re.compile(r"^\s+(File \"|\S.*\^+$)|^Traceback \(most recent call last\):$")


def component_line(node: str, state: str, seconds: float) -> str:
    return f"  {node:<32} {state:<8} {seconds:8.1f} s"


def error_lines(error: BaseException) -> list[str]:
    """The lines of an exception that say what went wrong, without traceback frames."""
    lines = [line.rstrip() for line in str(error).splitlines() if line.strip()]
    lines = [line for line in lines if not _TRACEBACK_FRAME.match(line)]
    if not lines:
        lines = [type(error).__name__]
    else:
        lines[0] = f"{type(error).__name__}: {lines[0]}"
    if len(lines) > MAX_ERROR_LINES:
        lines = lines[:3] + ["  ..."] + lines[-(MAX_ERROR_LINES - 4) :]
    return lines


def outcome(store: metadata_store.MetadataStore, run) -> str:
    """One sentence: what this run pushed, or why it pushed nothing."""
    failed = metadata.failed_nodes(store, run)
    if failed:
        return f"nothing pushed: the run failed in {failed[0]}"
    pushed = metadata.pushed_model(store, run)
    if pushed is None:
        return "nothing pushed: the run stopped before the Pusher"
    props = pushed.custom_properties
    if metadata.value(props, names.PUSHED) == 1:
        return (
            f"pushed version {metadata.value(props, names.PUSHED_VERSION)} "
            f"to {metadata.value(props, names.PUSHED_DESTINATION)}"
        )
    blessing = metadata.blessing_of(store, pushed)
    if not metadata.is_blessed(blessing):
        return "nothing pushed: the Evaluator did not bless the model " + failing_metrics(
            store, blessing
        )
    return "nothing pushed: the blessed model is the one already serving"


def failing_metrics(store: metadata_store.MetadataStore, blessing) -> str:
    """ "(failed: name=value, ...)" for a blessing the Evaluator refused, for people."""
    try:
        failures = evaluation.validation_failures(metadata.evaluation_of(store, blessing).uri)
    except Exception:  # noqa: BLE001 - the reason is a courtesy; the outcome stands
        return "(see the log)"
    return "(failed: " + ", ".join(failures[:6]) + ")" if failures else ""


class MetadataProgress:
    """Prints a line for each component of the current run as it finishes, by polling
    ML Metadata from a thread while the run goes on in the main thread."""

    def __init__(
        self, open_store: Callable[[], metadata_store.MetadataStore], since_ms: int, say
    ) -> None:
        self._open_store, self._since, self._say = open_store, since_ms, say
        self._printed: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> MetadataProgress:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        try:
            self.poll()  # the last components finished after the final tick
        except Exception:  # noqa: BLE001 - no store: the run never started
            pass

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - the store is busy or not created yet
                continue

    def poll(self) -> None:
        store = self._open_store()
        run = metadata.this_run(store, self._since)
        if run is None:
            return
        for execution in sorted(store.get_executions_by_context(run.id), key=lambda e: e.id):
            state = metadata.STATE_NAMES.get(execution.last_known_state)
            if execution.id in self._printed or state in (None, "running"):
                continue
            self._printed.add(execution.id)
            seconds = execution.last_update_time_since_epoch - execution.create_time_since_epoch
            self._say(component_line(metadata.node_name(store, execution), state, seconds / 1000))
