"""The model server's REST contract, checked against a running server over loopback HTTP.

One server serves two models from a model config file: `toy` (tests/toy_model.py, two
inputs and two outputs, versions 1 and 2, labels stable=1 and canary=2, policy "all")
and `tagger` (a small real tagger, tests/tagger_model.py). Expectations are TF Serving's
documented behaviour and messages (api_rest.md, http_rest_api_handler, json_tensor).
"""

from __future__ import annotations

import base64
import shutil

import pytest

from tests.commands import run_module
from tests.model_server_process import model_server
from tests.toy_model import save_toy_model

MAX_BODY = 1 << 20
TIMEOUT_MS = 1500


@pytest.fixture(scope="module")
def server(tmp_path_factory, tagger_model):
    root = tmp_path_factory.mktemp("contract")
    for version in (1, 2):
        save_toy_model(root / "toy" / str(version), version)
    shutil.copytree(tagger_model, root / "tagger" / "1")
    (root / "toy" / "not-a-version").mkdir()  # ignored: not an integer name
    config = root / "models.config"
    config.write_text(f"""
model_config_list {{
  config {{
    name: "toy"  base_path: "{root / "toy"}"  model_platform: "tensorflow"
    model_version_policy {{ all {{}} }}
    version_labels {{ key: "stable" value: 1 }}
    version_labels {{ key: "canary" value: 2 }}
  }}
  config {{ name: "tagger"  base_path: "{root / "tagger"}"  model_platform: "tensorflow" }}
}}
""")
    monitoring = root / "monitoring.config"
    monitoring.write_text("prometheus_config { enable: true }\n")
    with model_server(
        f"--model_config_file={config}",
        f"--monitoring_config_file={monitoring}",
        f"--rest_api_max_body_bytes={MAX_BODY}",
        f"--rest_api_timeout_in_ms={TIMEOUT_MS}",
        log_dir=root,
    ) as running:
        yield running


def error_of(reply, status: int) -> str:
    assert reply.status == status, (reply.status, reply.body[:500])
    body = reply.json()
    assert list(body) == ["error"]
    return body["error"]


TOY_ROWS = {"instances": [{"a": [1.0, 2.0], "b": 3}, {"a": [0.5, 0.25], "b": -1}]}


# --- status and metadata ----------------------------------------------------------------


def test_status_lists_every_version_newest_first(server):
    reply = server.get("/v1/models/toy")
    assert reply.status == 200
    ok = {"error_code": "OK", "error_message": ""}
    assert reply.json() == {
        "model_version_status": [
            {"version": "2", "state": "AVAILABLE", "status": ok},
            {"version": "1", "state": "AVAILABLE", "status": ok},
        ]
    }


def test_status_of_one_version_and_of_a_label(server):
    assert [
        s["version"] for s in server.get("/v1/models/toy/versions/1").json()["model_version_status"]
    ] == ["1"]
    canary = server.get("/v1/models/toy/labels/canary").json()["model_version_status"]
    assert [s["version"] for s in canary] == ["2"]


def test_status_errors(server):
    assert (
        error_of(server.get("/v1/models/nope"), 404) == "Could not find any versions of model nope"
    )
    assert error_of(server.get("/v1/models/toy/versions/9"), 404) == (
        "Could not find version 9 of model toy"
    )
    assert error_of(server.get("/v1/models/toy/labels/gold"), 400) == (
        "Unrecognized servable version label: gold"
    )
    assert error_of(server.get("/v1/models"), 400) == "Missing model name in request."


def test_metadata_prints_signature_defs_as_tf_serving_does(server):
    reply = server.get("/v1/models/toy/versions/1/metadata")
    assert reply.status == 200
    body = reply.json()
    assert body["model_spec"] == {"name": "toy", "signature_name": "", "version": "1"}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "single", "bytes_echo", "slow"} <= set(signatures)
    default = signatures["serving_default"]
    assert default["method_name"] == "tensorflow/serving/predict"
    a = default["inputs"]["a"]
    assert a["dtype"] == "DT_FLOAT"
    assert a["tensor_shape"] == {
        "dim": [{"size": "-1", "name": ""}, {"size": "2", "name": ""}],
        "unknown_rank": False,
    }
    assert default["outputs"]["version"]["dtype"] == "DT_INT64"
    latest = server.get("/v1/models/toy/metadata").json()
    assert latest["model_spec"]["version"] == "2"  # no version: the latest


# --- predict ---------------------------------------------------------------------------


def test_row_form_gives_predictions_one_object_per_row(server):
    reply = server.post("/v1/models/toy/versions/1:predict", TOY_ROWS)
    assert reply.status == 200
    assert reply.json() == {
        "predictions": [{"total": 6.0, "version": 1}, {"total": -0.25, "version": 1}]
    }
    assert b"6.0" in reply.body  # whole floats keep their ".0", as TF Serving writes them


def test_column_form_gives_outputs_keyed_by_name(server):
    body = {"inputs": {"a": [[1.0, 2.0], [0.5, 0.25]], "b": [3, -1]}}
    reply = server.post("/v1/models/toy/versions/2:predict", body)
    assert reply.status == 200
    assert reply.json() == {"outputs": {"total": [6.0, -0.25], "version": [2, 2]}}


def test_labels_and_latest_route_to_their_versions(server):
    def version(path):
        return server.post(path, TOY_ROWS).json()["predictions"][0]["version"]

    assert version("/v1/models/toy/labels/stable:predict") == 1
    assert version("/v1/models/toy/labels/canary:predict") == 2
    assert version("/v1/models/toy:predict") == 2
    assert version("/V1/MODELS/toy/VERSIONS/1:PREDICT") == 1  # TF Serving matches any case


def test_one_output_is_not_named_and_signature_name_is_honoured(server):
    rows = server.post("/v1/models/toy:predict", {"signature_name": "single", "instances": ["ab"]})
    assert rows.json() == {"predictions": ["AB"]}
    cols = server.post("/v1/models/toy:predict", {"signature_name": "single", "inputs": ["x", "y"]})
    assert cols.json() == {"outputs": ["X", "Y"]}


def test_b64_in_and_bytes_outputs_b64_out(server):
    raw = bytes([0, 255, 7, 128])
    encoded = base64.b64encode(raw).decode()
    body = {"signature_name": "bytes_echo", "instances": [{"b64": encoded}]}
    assert server.post("/v1/models/toy:predict", body).json() == {"predictions": [{"b64": encoded}]}
    upper = {"signature_name": "single", "instances": [{"b64": base64.b64encode(b"hi").decode()}]}
    assert server.post("/v1/models/toy:predict", upper).json() == {"predictions": ["HI"]}


def test_tagger_answers_named_scores_tags_threshold_and_its_decision(server):
    titles = ["How to merge two dicts in python", "SELECT rows with JOIN in mysql"]
    reply = server.post("/v1/models/tagger:predict", {"instances": titles})
    assert reply.status == 200
    rows = reply.json()["predictions"]
    assert len(rows) == 2
    for row in rows:
        assert set(row) == {"scores", "tags", "threshold", "predicted"}
        assert len(row["scores"]) == len(row["tags"]) == len(row["predicted"]) == 100
        # JSON booleans, as TF Serving writes a DT_BOOL output; at least one per title.
        assert {type(p) for p in row["predicted"]} == {bool} and any(row["predicted"])
        assert all(0.0 <= s <= 1.0 for s in row["scores"])
        assert 0 < row["threshold"] < 1
    assert "python" in rows[0]["tags"]
    assert rows[0]["scores"] != rows[1]["scores"]
    columns = server.post("/v1/models/tagger:predict", {"inputs": {"title": titles}}).json()
    assert columns["outputs"]["scores"] == [r["scores"] for r in rows]


# --- errors ------------------------------------------------------------------------------


def test_malformed_json_is_400_even_for_an_unknown_model(server):
    message = error_of(server.post("/v1/models/nope:predict", b"{not json"), 400)
    assert message.startswith("JSON Parse error:")
    assert error_of(server.post("/v1/models/toy:predict", b""), 400) == (
        "JSON Parse error: The document is empty"
    )
    assert "Is not object" in error_of(server.post("/v1/models/toy:predict", b"[1]"), 400)


def test_non_utf8_body_is_400(server):
    message = error_of(server.post("/v1/models/toy:predict", b'{"instances": ["\xff\xfe"]}'), 400)
    assert message.startswith("JSON Parse error: Invalid encoding")


def test_instances_and_inputs_both_or_neither(server):
    both = {"instances": [1], "inputs": [1]}
    assert "expecting only one of 'inputs' or 'instances' keys" in error_of(
        server.post("/v1/models/toy:predict", both), 400
    )
    assert error_of(server.post("/v1/models/toy:predict", {"signature_name": "single"}), 400) == (
        "Missing 'inputs' or 'instances' key"
    )
    assert "No values in 'instances' array" in error_of(
        server.post("/v1/models/toy:predict", {"instances": []}), 400
    )


def test_unknown_model_version_label_and_signature(server):
    assert error_of(server.post("/v1/models/nope:predict", TOY_ROWS), 404) == (
        "Servable not found for request: Latest(nope)"
    )
    assert error_of(server.post("/v1/models/toy/versions/7:predict", TOY_ROWS), 404) == (
        "Servable not found for request: Specific(toy, 7)"
    )
    assert error_of(server.post("/v1/models/toy/labels/gold:predict", TOY_ROWS), 400) == (
        "Unrecognized servable version label: gold"
    )
    body = {"signature_name": "nope", "instances": [1]}
    assert error_of(server.post("/v1/models/toy:predict", body), 400) == (
        'Serving signature name: "nope" not found in signature def'
    )
    assert "'signature_name' key must be a string value." in error_of(
        server.post("/v1/models/toy:predict", {"signature_name": 5, "instances": [1]}), 400
    )
    assert error_of(server.post("/v1/models/toy:explain", TOY_ROWS), 400) == (
        "Malformed request: POST /v1/models/toy:explain"
    )


def test_wrong_input_name_and_wrong_type(server):
    wrong_name = {"instances": [{"a": [1.0, 2.0], "c": 3}]}
    assert "does not have named input: c" in error_of(
        server.post("/v1/models/toy:predict", wrong_name), 400
    )
    missing = {"inputs": {"a": [[1.0, 2.0]]}}
    assert error_of(server.post("/v1/models/toy:predict", missing), 400) == (
        "Missing named input: b in 'inputs' object."
    )
    wrong_type = {"instances": [{"a": [1.0, 2.0], "b": "three"}]}
    assert 'JSON Value: "three" Type: String is not of expected type: int64' in error_of(
        server.post("/v1/models/toy:predict", wrong_type), 400
    )
    plain = {"instances": [1.0]}
    assert "instances is a plain list, but expecting list of objects" in error_of(
        server.post("/v1/models/toy:predict", plain), 400
    )
    lossy = {"instances": [{"a": [16777217, 0.0], "b": 1}]}
    assert "without loss of precision" in error_of(
        server.post("/v1/models/toy:predict", lossy), 400
    )


def test_ragged_rows(server):
    ragged_rows = {"instances": [{"a": [1.0, 2.0], "b": 1}, {"a": [1.0], "b": 1}]}
    assert "Expecting tensor size: 2 but got: 1" in error_of(
        server.post("/v1/models/toy:predict", ragged_rows), 400
    )
    ragged_columns = {"inputs": {"a": [[1.0, 2.0], [1.0]], "b": [1, 1]}}
    assert "Encountered list at unexpected size: 1 at level: 1 expected size: 2" in error_of(
        server.post("/v1/models/toy:predict", ragged_columns), 400
    )


def test_oversized_body_is_413(server):
    body = b'{"instances": ["' + b"x" * MAX_BODY + b'"]}'
    message = error_of(server.post("/v1/models/toy:predict", body), 413)
    assert f"exceeds the limit of {MAX_BODY} bytes" in message
    assert server.get("/v1/models/toy").status == 200  # and the server carries on


def test_request_timeout_is_504(server):
    slow = {"signature_name": "slow", "instances": [1_000_000]}
    assert error_of(server.post("/v1/models/toy:predict", slow), 504) == "Deadline Exceeded"


def test_classify_and_regress_on_a_model_without_such_signatures(server):
    body = {"examples": [{"title": "python lists"}]}
    assert error_of(server.post("/v1/models/tagger:classify", body), 400) == (
        "Expected one or two output Tensors, found 4"
    )
    assert error_of(server.post("/v1/models/tagger:regress", body), 400) == (
        "Expected one output Tensor."
    )
    assert "key 'examples' is expected and was not found" in error_of(
        server.post("/v1/models/tagger:classify", {"instances": []}), 400
    )
    assert error_of(server.post("/v1/models/nope:classify", body), 404) == (
        "Servable not found for request: Latest(nope)"
    )


# --- metrics ------------------------------------------------------------------------------


def test_requests_for_models_not_served_add_no_metric_series(server):
    def series() -> set[str]:
        page = server.get("/monitoring/prometheus/metrics").body.decode()
        return {line.rsplit(" ", 1)[0] for line in page.splitlines() if not line.startswith("#")}

    before = series()
    for n in range(300):
        reply = server.post(f"/v1/models/bogus{n}:predict", TOY_ROWS)
        assert reply.status == 404 and f"bogus{n}" in reply.json()["error"]
    assert series() == before


def test_prometheus_metrics_use_tf_serving_names(server):
    server.post("/v1/models/toy:predict", TOY_ROWS)
    server.post("/v1/models/toy:predict", {"instances": [{"a": [1.0, 2.0], "b": "x"}]})
    reply = server.get("/monitoring/prometheus/metrics")
    assert reply.status == 200
    text = reply.body.decode()
    lines = text.splitlines()

    def value(prefix: str) -> float:
        (line,) = [line for line in lines if line.startswith(prefix + " ")]
        return float(line.rsplit(" ", 1)[1])

    assert value(':tensorflow:serving:request_count{model_name="toy",status="OK"}') >= 1
    assert (
        value(':tensorflow:serving:request_count{model_name="toy",status="INVALID_ARGUMENT"}') >= 1
    )
    latency = (
        ':tensorflow:serving:request_latency_count{model_name="toy",API="predict",'
        'entrypoint="REST"}'
    )
    assert value(latency) >= 2
    assert "# TYPE :tensorflow:serving:request_latency histogram" in text
    loads = [
        line for line in lines if line.startswith(":tensorflow:cc:saved_model:load_attempt_count")
    ]
    assert len(loads) == 3 and all('status="success"' in line for line in loads)
    assert any(line.startswith(":tensorflow:cc:saved_model:load_latency{") for line in lines)


# --- command line -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--model_base_path=/tmp"],
            "--rest_api_port is required: this server speaks TF Serving's REST API",
        ),
        (["--rest_api_port=1"], "give --model_base_path (one model) or --model_config_file"),
        (
            ["--rest_api_port=1", "--model_config_file=/nonexistent.config"],
            "--model_config_file: cannot read /nonexistent.config",
        ),
    ],
)
def test_bad_command_lines_fail_with_one_sentence(args, message):
    proc = run_module("-m", "serving.model_server", *args, check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(f"model_server: error: {message}")


@pytest.mark.parametrize(("given", "enabled"), [(None, "False"), ("0", "False"), ("1", "True")])
def test_the_server_runs_tensorflow_without_onednn_rewrites_unless_the_operator_asks(
    monkeypatch, given, enabled
):
    # What `python -m serving.model_server` has imported when main() starts, asked of
    # TensorFlow itself rather than of the environment the entry point sets.
    if given is None:
        monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    else:
        monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", given)
    proc = run_module(
        "-c",
        "import serving.model_server.__main__; "
        "from tensorflow.python.util import _pywrap_util_port as port; "
        "print(port.IsMklEnabled())",
    )
    assert proc.stdout.split() == [enabled]


def test_a_config_file_that_does_not_parse_names_the_problem(tmp_path):
    bad = tmp_path / "models.config"
    bad.write_text("model_config_list { config { nme: 'x' } }")
    proc = run_module(
        "-m", "serving.model_server", "--rest_api_port=1", f"--model_config_file={bad}", check=False
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"model_server: error: --model_config_file: {bad} is not a valid")
    assert "nme" in last


def test_a_label_on_a_version_that_did_not_load_is_refused_unless_allowed(tmp_path):
    save_toy_model(tmp_path / "toy" / "1", 1)
    config = tmp_path / "models.config"
    config.write_text(f"""
model_config_list {{ config {{
  name: "toy"  base_path: "{tmp_path / "toy"}"  model_platform: "tensorflow"
  model_version_policy {{ all {{}} }}
  version_labels {{ key: "stable" value: 1 }}
  version_labels {{ key: "canary" value: 2 }}
}} }}""")
    proc = run_module(
        "-m",
        "serving.model_server",
        "--rest_api_port=1",
        f"--model_config_file={config}",
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "model_server: error: Request to assign label to version 2 of model toy, which is not "
        "currently available for inference"
    )
    with model_server(
        f"--model_config_file={config}",
        "--allow_version_labels_for_unavailable_models",
        log_dir=tmp_path,
    ) as server:
        rows = {"instances": [{"a": [1.0, 2.0], "b": 3}]}
        stable = server.post("/v1/models/toy/labels/stable:predict", rows)
        assert stable.json()["predictions"][0]["version"] == 1
        assert error_of(server.post("/v1/models/toy/labels/canary:predict", rows), 404) == (
            "Servable not found for request: Specific(toy, 2)"
        )
