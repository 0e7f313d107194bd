"""google.cloud.aiplatform at the client boundary: `init` and `PipelineJob`, with jobs kept
by resource name as Vertex AI keeps them. A submitted job runs for `polls` lookups, then
ends as the test's `end(job)` says (its task details, final state and error). Nothing
else of the client is replaced. Plug it in with `install(monkeypatch, end)`.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from datetime import datetime, timedelta

from google.api_core import exceptions

RUNNING = "PIPELINE_STATE_RUNNING"
# The made-up Google Cloud project the tests compile and submit for: vertex_runner.py's
# location flags, each with its value.
IMAGE = "europe-west4-docker.pkg.dev/proj/tagger/pipeline@sha256:" + "ab" * 32
DATA_ROOT, SERVING_BASE = "gs://proj-data/spans", "gs://proj-models/serving"
CLOUD = (
    "--project",         "proj",
    "--region",          "europe-west4",
    "--pipeline-root",   "gs://proj-root/p",
    "--data-root",       DATA_ROOT,
    "--serving-base",    SERVING_BASE,
    "--image",           IMAGE,
    "--service-account", "pipeline@proj.iam.gserviceaccount.com",
)  # fmt: skip


def task(name: str, seconds: float = 1.0, state: str = "SUCCEEDED", outputs: dict | None = None):
    """One entry of a job's task_details; outputs: output name -> artifact metadata."""
    start = datetime(2026, 1, 1)
    artifacts = {
        output: types.SimpleNamespace(artifacts=[types.SimpleNamespace(metadata=metadata)])
        for output, metadata in (outputs or {}).items()
    }
    return types.SimpleNamespace(
        task_name=name,
        state=types.SimpleNamespace(name=state),
        start_time=start,
        end_time=start + timedelta(seconds=seconds),
        outputs=artifacts,
    )


def pushed(version: str, destination: str, blessed: bool = True) -> list:
    """The tasks of a job whose Evaluator blessed the model and whose Pusher published it."""
    return [
        task("Trainer", 42.0),
        task("Evaluator", outputs={"blessing": {"blessed": int(blessed)}}),
        task(
            "AtomicPusher",
            3.0,
            outputs={
                "pushed_model": {
                    "pushed": int(blessed),
                    "pushed_version": version if blessed else "",
                    "pushed_destination": destination if blessed else "",
                }
            },
        ),
    ]


class Killed(BaseException):
    """The worker process dying mid-call: nothing in it may catch this."""


class FakeVertex:
    def __init__(self, end: Callable, polls: int) -> None:
        self.end, self.polls = end, polls
        self.jobs: dict[str, object] = {}  # resource name -> submitted job
        self.made: list = []  # every PipelineJob constructed
        self.inits: list[dict] = []
        self.kill_on_poll: int | None = None  # die at this lookup, counted over all jobs
        self.lookups = 0
        self.events: list[tuple[str, str]] = []  # ("submit" | "end", resource name), in order

    @property
    def submitted(self) -> list[str]:
        return [job.resource_name for job in self.made if any(c[0] == "submit" for c in job.calls)]


def install(monkeypatch, end: Callable | None = None, polls: int = 1) -> FakeVertex:
    """end(job) -> (task_details, final state, error message); by default a job that
    succeeds with one task."""
    from google.cloud import aiplatform

    vertex = FakeVertex(
        end or (lambda job: ([task("Trainer")], "PIPELINE_STATE_SUCCEEDED", "")), polls
    )

    class PipelineJob:
        def __init__(self, **kwargs) -> None:
            self.kwargs, self.calls = kwargs, []
            job_id = kwargs.get("job_id") or f"{kwargs['display_name']}-123"
            self.resource_name = (
                f"projects/{kwargs['project']}/locations/{kwargs['location']}/pipelineJobs/{job_id}"
            )
            self.state = types.SimpleNamespace(name="PIPELINE_STATE_PENDING")
            self.task_details: list = []
            self.gca_resource = types.SimpleNamespace(error=types.SimpleNamespace(message=""))
            self.looked_at = 0
            vertex.made.append(self)

        def submit(self, **kwargs) -> None:
            self.calls.append(("submit", kwargs))
            if self.resource_name in vertex.jobs:
                raise exceptions.AlreadyExists(self.resource_name)
            vertex.jobs[self.resource_name] = self
            vertex.events.append(("submit", self.resource_name))
            self.state = types.SimpleNamespace(name=RUNNING)

        def create_schedule(self, **kwargs):
            self.calls.append(("create_schedule", kwargs))
            return types.SimpleNamespace(resource_name="projects/1/schedules/7")

        @classmethod
        def get(cls, resource_name: str):
            vertex.lookups += 1
            if vertex.kill_on_poll == vertex.lookups:
                raise Killed(resource_name)
            job = vertex.jobs.get(resource_name)
            if job is None:
                raise exceptions.NotFound(resource_name)
            job.looked_at += 1
            if job.state.name == RUNNING and job.looked_at >= vertex.polls:
                job.task_details, state, error = vertex.end(job)
                job.state = types.SimpleNamespace(name=state)
                job.gca_resource.error.message = error
                vertex.events.append(("end", resource_name))
            return job

        @classmethod
        def list(cls, filter: str, project: str, location: str) -> list:
            """Only the filter the client is given here: running jobs of one pipeline."""
            assert f'state="{RUNNING}"' in filter, filter
            return [
                job
                for job in vertex.jobs.values()
                if job.state.name == RUNNING
                and f'display_name="{job.kwargs["display_name"]}"' in filter
            ]

    monkeypatch.setattr(aiplatform, "PipelineJob", PipelineJob)
    monkeypatch.setattr(aiplatform, "init", lambda **kw: vertex.inits.append(kw))
    return vertex
