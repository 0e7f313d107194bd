"""One prediction as TF Serving's PredictionLog, as its own request logger writes it.

    log_metadata.model_spec    {name, signature_name, version: the version that answered}
    log_metadata.sampling_config.sampling_rate, timestamp_secs, saved_model_tags
    predict_log.request        model_spec {name, signature_name, version_label: the label
                               the request was routed by, e.g. "stable" or "canary"};
                               inputs {"title": DT_STRING [1]}
    predict_log.response       model_spec {name, signature_name, version};
                               outputs {"scores": DT_FLOAT [1, tags],
                               "tags": DT_STRING [1, tags], "threshold": DT_FLOAT [1],
                               "predicted": DT_BOOL [1, tags]}

The outputs keep the names of the model's serving_default signature (contract/features.py).
"""

from __future__ import annotations

from contract import features
from serving.request_log import protos

SIGNATURE = "serving_default"


def _tensor(dtype: int, values: list, shape: list[int]):
    tensor = protos.TensorProto(dtype=dtype)
    for size in shape:
        tensor.tensor_shape.dim.add(size=size)
    field = {
        protos.DT_FLOAT: tensor.float_val,
        protos.DT_STRING: tensor.string_val,
        protos.DT_BOOL: tensor.bool_val,
    }[dtype]
    field.extend(v.encode() if dtype == protos.DT_STRING else v for v in values)
    return tensor


def describe(
    record, model: str, signature: str, version: int, label: str | None, rate: float, at: float
) -> None:
    """Fill what a PredictionLog says of the call: log_metadata (the version that
    answered, the sampling rate, when) and the model spec of its request (routed by
    `label`, or by version when there is none) and response. `record` is a PredictionLog
    of either class, this package's or tensorflow-serving-api's."""
    meta = record.log_metadata
    meta.model_spec.name, meta.model_spec.signature_name = model, signature
    meta.model_spec.version.value = version
    meta.sampling_config.sampling_rate = rate
    meta.timestamp_secs = int(at)
    meta.saved_model_tags.append("serve")
    request, response = record.predict_log.request, record.predict_log.response
    request.model_spec.name, request.model_spec.signature_name = model, signature
    if label is not None:
        request.model_spec.version_label = label
    else:
        request.model_spec.version.value = version
    response.model_spec.CopyFrom(meta.model_spec)


def prediction_log(
    model: str, version: str, label: str, title: str, row: dict, rate: float, at: float
) -> bytes:
    """The serialized record. row: the model's answer for the title (TF Serving's REST
    row: scores, tags, threshold, predicted)."""
    record = protos.PredictionLog()
    describe(record, model, SIGNATURE, int(version), label, rate, at)
    request, response = record.predict_log.request, record.predict_log.response
    request.inputs[features.SERVING_INPUT].CopyFrom(_tensor(protos.DT_STRING, [title], [1]))
    scores, tags = row[features.OUTPUT_SCORES], row[features.OUTPUT_TAGS]
    outputs = response.outputs
    outputs[features.OUTPUT_SCORES].CopyFrom(_tensor(protos.DT_FLOAT, scores, [1, len(scores)]))
    outputs[features.OUTPUT_TAGS].CopyFrom(_tensor(protos.DT_STRING, tags, [1, len(tags)]))
    threshold = row[features.OUTPUT_THRESHOLD]
    outputs[features.OUTPUT_THRESHOLD].CopyFrom(_tensor(protos.DT_FLOAT, [threshold], [1]))
    if features.OUTPUT_PREDICTED in row:
        decided = row[features.OUTPUT_PREDICTED]
        outputs[features.OUTPUT_PREDICTED].CopyFrom(
            _tensor(protos.DT_BOOL, decided, [1, len(decided)])
        )
    return record.SerializeToString()
