"""Runs a compiled Vertex AI PipelineJob on this machine, task by task, as Vertex would.

For each task of the job's DAG, in dependency order:
- a container task: the executor input Vertex would pass (parameters from the spec,
  input artifacts from the producing tasks' outputs, output artifacts and the output
  file under the pipeline root) replaces `{{$}}` in the task's own command and
  arguments, which then run as a process in this environment: first the container's
  pre-cache-check hook if it has one (ExampleGen's driver, whose updated parameters
  Vertex passes on to the executor), then the container itself (TFX's Kubeflow V2
  executor entrypoint). Its ExecutorOutput file gives the output artifacts' metadata.
- an importer task: the artifact at the URI it names (the reviewed hyperparameters),
  registered as Vertex would, without running anything (the same artifact again when an
  earlier run imported that URI, as Vertex does without `reimport`);
- a resolver task: its artifact query (the only two TFX compiles for Vertex: the latest
  blessed ModelBlessing, and the Model it names) is answered from the artifacts of the
  runs this launcher made before, which stand in for Vertex ML Metadata.
As Vertex runs a job submitted with caching on (vertex_runner.py's default; --no-cache
turns it off), a container task whose cachingOptions enable it and whose inputs, after its
pre-cache-check hook, are those of a task already run, is not run again: it gets that
task's outputs, as Vertex's execution cache gives them.

Nothing here reaches Google Cloud; the job must be compiled with a local pipeline root,
local data and serving paths, and Beam's DirectRunner.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import re
import subprocess
from pathlib import Path

from google.protobuf import json_format, struct_pb2
from kfp.pipeline_spec import pipeline_spec_pb2 as kfp

ARTIFACT_NAME = "projects/local/locations/local/metadataStores/default/artifacts/{}"
_ids = itertools.count(1)


def load_job(path: Path) -> tuple[kfp.PipelineJob, kfp.PipelineSpec, kfp.PipelineDeploymentConfig]:
    """The job file as Vertex reads it: PipelineJob, its PipelineSpec and deployment config."""
    job = json_format.Parse(path.read_text(), kfp.PipelineJob())
    spec = json_format.ParseDict(json_format.MessageToDict(job.pipeline_spec), kfp.PipelineSpec())
    deployment = json_format.ParseDict(
        json_format.MessageToDict(spec.deployment_spec), kfp.PipelineDeploymentConfig()
    )
    return job, spec, deployment


def cache_key(component: str, container, executor_input) -> str:
    """What Vertex's execution cache keys a task by: its component, its container, and its
    inputs (parameters, and input artifacts by identity); not where its outputs go."""
    identity = {
        "component": component,
        "container": json_format.MessageToDict(container),
        "inputs": json_format.MessageToDict(executor_input.inputs),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def topological(tasks) -> list[str]:
    order, done = [], set()
    while len(order) < len(tasks):
        ready = sorted(
            n for n, t in tasks.items() if n not in done and set(t.dependent_tasks) <= done
        )
        if not ready:
            raise AssertionError(f"the DAG has a cycle among {set(tasks) - done}")
        order += ready
        done |= set(ready)
    return order


@dataclasses.dataclass
class TaskRun:
    name: str
    state: str  # "ran", "cached", "resolved", "imported"
    seconds: float
    outputs: dict[str, list[kfp.RuntimeArtifact]]


class Launcher:
    def __init__(self, job_file: Path, workdir: Path) -> None:
        self.job, self.spec, self.deployment = load_job(job_file)
        self.root = self.job.runtime_config.gcs_output_directory
        self.workdir = workdir
        self.history: list[dict[str, TaskRun]] = []  # stands in for Vertex ML Metadata
        self.cache: dict[str, dict[str, list[kfp.RuntimeArtifact]]] = {}
        self.imported: dict[tuple[str, bytes], kfp.RuntimeArtifact] = {}

    def run(self) -> dict[str, TaskRun]:
        """One pipeline run; raises AssertionError with the task's output if a task fails."""
        tasks = self.spec.root.dag.tasks
        run_id = f"run-{len(self.history) + 1}"
        done: dict[str, TaskRun] = {}
        for name in topological(tasks):
            task = tasks[name]
            component = self.spec.components[task.component_ref.name]
            executor = self.deployment.executors[component.executor_label]
            if executor.HasField("resolver"):
                done[name] = self._resolve(name, task, executor.resolver, done)
            elif executor.HasField("importer"):
                done[name] = self._import(name, executor.importer)
            else:
                done[name] = self._container(
                    run_id, name, task, component, executor.container, done
                )
        self.history.append(done)
        return done

    # --- container tasks ---------------------------------------------------------------

    def _container(self, run_id, name, task, component, container, done) -> TaskRun:
        import time

        task_root = Path(self.root) / run_id / name
        executor_input = kfp.ExecutorInput()
        for key, parameter in task.inputs.parameters.items():
            executor_input.inputs.parameters[key].CopyFrom(parameter.runtime_value.constant_value)
        for key, source in task.inputs.artifacts.items():
            produced = done[source.task_output_artifact.producer_task].outputs
            artifacts = produced.get(source.task_output_artifact.output_artifact_key, [])
            if artifacts:  # an empty resolver result is an absent input, as on Vertex
                executor_input.inputs.artifacts[key].artifacts.extend(artifacts)
        for key, definition in component.output_definitions.artifacts.items():
            executor_input.outputs.artifacts[key].artifacts.add(
                name=ARTIFACT_NAME.format(next(_ids)),
                type=definition.artifact_type,
                uri=str(task_root / key),
            )
        executor_input.outputs.output_file = str(task_root / "executor_output.json")
        started = time.monotonic()
        if container.lifecycle.HasField("pre_cache_check"):
            hook = container.lifecycle.pre_cache_check
            self._process(f"{run_id}.{name}", "driver", [*hook.command, *hook.args], executor_input)
            driver_output = self._read_output(executor_input)
            # Vertex applies the driver's parameters to the executor's inputs.
            for key, value in driver_output.parameter_values.items():
                executor_input.inputs.parameters[key].CopyFrom(_old_style(value))
            os.remove(executor_input.outputs.output_file)
        cached_as = None
        if task.caching_options.enable_cache:
            cached_as = cache_key(task.component_ref.name, container, executor_input)
            if cached_as in self.cache:
                outputs = self.cache[cached_as]
                return TaskRun(name, "cached", time.monotonic() - started, outputs)
        self._process(
            f"{run_id}.{name}", "executor", [*container.command, *container.args], executor_input
        )
        result = self._read_output(executor_input)
        outputs = {}
        for key, artifact_list in executor_input.outputs.artifacts.items():
            declared = artifact_list.artifacts[0]
            written = result.artifacts[key].artifacts[0] if key in result.artifacts else declared
            merged = kfp.RuntimeArtifact()
            merged.CopyFrom(declared)
            merged.metadata.CopyFrom(written.metadata)
            outputs[key] = [merged]
        if cached_as is not None:
            self.cache[cached_as] = outputs
        return TaskRun(name, "ran", time.monotonic() - started, outputs)

    def _process(self, name: str, role: str, argv: list[str], executor_input) -> None:
        text = json_format.MessageToJson(executor_input)
        argv = [arg.replace("{{$}}", text) for arg in argv]
        log = self.workdir / f"{name}.{role}.log"
        with open(log, "w") as out:
            proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=900)
        if proc.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
            raise AssertionError(f"task {name} ({role}) exited {proc.returncode}:\n{tail}")

    @staticmethod
    def _read_output(executor_input) -> kfp.ExecutorOutput:
        output = kfp.ExecutorOutput()
        path = executor_input.outputs.output_file
        if os.path.exists(path):
            json_format.Parse(Path(path).read_text(), output, ignore_unknown_fields=True)
        return output

    # --- importer tasks ----------------------------------------------------------------

    def _import(self, name, importer) -> TaskRun:
        """The artifact at the importer's URI. Without `reimport` (TFX compiles none), Vertex
        reuses the artifact an earlier run imported from the same URI with the same type."""
        uri = importer.artifact_uri.constant_value.string_value  # TFX compiles a constant
        identity = (uri, importer.type_schema.SerializeToString(deterministic=True))
        if importer.reimport or identity not in self.imported:
            artifact = kfp.RuntimeArtifact(
                name=ARTIFACT_NAME.format(next(_ids)), type=importer.type_schema, uri=uri
            )
            artifact.metadata.CopyFrom(importer.metadata)
            self.imported[identity] = artifact
        return TaskRun(name, "imported", 0.0, {"result": [self.imported[identity]]})

    # --- resolver tasks ----------------------------------------------------------------

    def _resolve(self, name, task, resolver, done) -> TaskRun:
        outputs = {}
        for key, query in resolver.output_artifact_queries.items():
            wanted = query.filter
            for ref, source in task.inputs.artifacts.items():  # {{$.inputs.artifacts[...]...}}
                produced = done[source.task_output_artifact.producer_task].outputs
                inputs = produced.get(source.task_output_artifact.output_artifact_key, [])
                wanted = _fill_input_placeholders(wanted, ref, inputs)
            outputs[key] = self._query(wanted)
        return TaskRun(name, "resolved", 0.0, outputs)

    def _query(self, filter_text: str) -> list[kfp.RuntimeArtifact]:
        """The newest artifact of earlier runs matching one of TFX's two resolver filters."""
        clauses = [c.strip() for c in filter_text.split(" AND ")]
        candidates = [
            a
            for run in self.history
            for t in run.values()
            for arts in t.outputs.values()
            for a in arts
        ]
        for clause in clauses:
            if clause == "state=LIVE":
                continue
            key, _, value = clause.partition("=")
            value = value.strip('"')
            if key == "schema_title":
                candidates = [a for a in candidates if _title(a) == value]
            elif key == "name":
                candidates = [a for a in candidates if a.name == value]
            elif key.startswith("metadata.") and key.endswith(".number_value"):
                field, number = key.split(".")[1], float(value)
                fields = [(a, a.metadata.fields) for a in candidates]
                candidates = [
                    a for a, f in fields if field in f and f[field].number_value == number
                ]
            else:
                raise AssertionError(f"resolver filter clause not understood: {clause}")
        return candidates[-1:]


def _title(artifact: kfp.RuntimeArtifact) -> str:
    if artifact.type.schema_title:
        return artifact.type.schema_title
    match = re.search(r"^title: (\S+)$", artifact.type.instance_schema, re.M)
    return match[1] if match else ""


def _fill_input_placeholders(text: str, ref: str, inputs: list) -> str:
    pattern = re.compile(
        r"\{\{\$\.inputs\.artifacts\['" + re.escape(ref) + r"'\]\.metadata\['([^']+)'\]\}\}"
    )

    def value(match: re.Match) -> str:
        if not inputs or match[1] not in inputs[0].metadata.fields:
            return "<none>"  # matches nothing, as an unresolved input does on Vertex
        field = inputs[0].metadata.fields[match[1]]
        return field.string_value or json.dumps(field.number_value)

    return pattern.sub(value, text)


def _old_style(value: struct_pb2.Value) -> kfp.Value:
    """A driver's struct Value as the pipeline-spec Value that `inputs.parameters` holds."""
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = value.number_value
        return (
            kfp.Value(int_value=int(number))
            if number == int(number)
            else kfp.Value(double_value=number)
        )
    return kfp.Value(string_value=value.string_value)
