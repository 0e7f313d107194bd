"""The JSON tensor codec on its own: TF Serving's number printing and request shapes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tensorflow.core.framework import types_pb2

from serving.model_server import float_text, json_codec
from serving.model_server.errors import Code, ServingError


@pytest.mark.parametrize(
    ("value", "as_float32", "as_float64"),
    [
        (5.0, "5.0", "5.0"),  # whole numbers keep a decimal point
        (0.2, "0.2", "0.2"),  # shortest %g when it round-trips
        (0.1 + 0.2, "0.3", "0.30000000000000004"),  # else 9 / 17 significant digits
        (123456789.0, "123456792.0", "123456789.0"),
        (1e-5, "1e-05", "1e-05"),
        (1e6, "1e+06", "1e+06"),
        (-0.0, "-0.0", "-0.0"),
        (float("nan"), "NaN", "NaN"),
        (float("inf"), "Infinity", "Infinity"),
        (float("-inf"), "-Infinity", "-Infinity"),
    ],
)
@pytest.mark.parametrize("size", [1, 16])  # one value at a time, and the vectorised path
def test_floats_print_as_tf_serving_prints_them(value, as_float32, as_float64, size):
    assert float_text.float_tokens(np.full(size, value, np.float32)) == [as_float32] * size
    assert float_text.float_tokens(np.full(size, value, np.float64)) == [as_float64] * size


def test_every_float32_survives_the_round_trip():
    values = np.random.default_rng(0).standard_normal(5000).astype(np.float32) * 1e3
    for chunk in (values, *values[:20].reshape(-1, 1)):
        tokens = float_text.float_tokens(chunk)
        assert np.array_equal(np.array([float(t) for t in tokens], np.float32), chunk)


def test_float32_short_form_is_chosen_as_printing_and_parsing_would():
    rng = np.random.default_rng(1)
    every_exponent = rng.integers(0, 2**32, 100_000, dtype=np.uint64).astype(np.uint32)
    few_digits = rng.integers(1, 10**6, 20_000) * 10.0 ** rng.integers(-44, 33, 20_000)
    values = np.concatenate(
        [
            every_exponent.view(np.float32),  # subnormals, huge values, NaN and inf too
            few_digits.astype(np.float32),  # %g is exact for most of these
            rng.random(20_000).astype(np.float32) ** 4,  # scores
            np.arange(-20_000, 20_000, dtype=np.float32) / 8,  # ties at the 6th digit
            10.0 ** np.arange(-45, 39, dtype=np.float32),  # powers of ten
        ]
    )
    values = values[np.isfinite(values)]
    printed = ",".join(["%g"] * values.size) % tuple(values.tolist())
    parsed = np.fromstring(printed, np.float64, sep=",").astype(np.float32)
    assert np.array_equal(float_text.short_float32(values), parsed == values)


def test_repeated_string_outputs_are_encoded_the_same_every_time():
    names = np.array([b"c#", b'say "hi"', "caf\u00e9".encode()], dtype=object)
    first = json_codec.predict_response({"tags": names}, json_codec.Format.COLUMN)
    again = json_codec.predict_response({"tags": names.copy()}, json_codec.Format.COLUMN)
    assert first == again
    assert json.loads(first) == {"outputs": ["c#", 'say "hi"', "caf\u00e9"]}


def test_row_and_column_responses():
    outputs = {"score": np.array([[0.5, 1.0]], np.float32), "name": np.array([b"x"], object)}
    rows = json.loads(json_codec.predict_response(outputs, json_codec.Format.ROW))
    assert rows == {"predictions": [{"score": [0.5, 1.0], "name": "x"}]}
    columns = json.loads(json_codec.predict_response(outputs, json_codec.Format.COLUMN))
    assert columns == {"outputs": {"score": [[0.5, 1.0]], "name": ["x"]}}
    single = json_codec.predict_response({"y": np.array([1, 2], np.int64)}, json_codec.Format.ROW)
    assert json.loads(single) == {"predictions": [1, 2]}


def test_instances_become_batched_arrays_of_the_signature_dtypes():
    dtypes = {"a": types_pb2.DT_FLOAT, "b": types_pb2.DT_STRING}
    doc = {"instances": [{"a": [1, 2], "b": "x"}, {"a": [3, 4.5], "b": {"b64": "eQ=="}}]}
    fmt, arrays = json_codec.predict_inputs(doc, dtypes)
    assert fmt is json_codec.Format.ROW
    assert arrays["a"].dtype == np.float32 and arrays["a"].tolist() == [[1, 2], [3, 4.5]]
    assert arrays["b"].tolist() == [b"x", b"y"]


@pytest.mark.parametrize(
    ("value", "dtype"),
    [
        (True, types_pb2.DT_INT64),
        (2**31, types_pb2.DT_INT32),
        (-1, types_pb2.DT_UINT32),
        (1.5, types_pb2.DT_INT64),
        ("1", types_pb2.DT_FLOAT),
        (1, types_pb2.DT_BOOL),
        (300, types_pb2.DT_UINT8),
    ],
)
def test_values_of_the_wrong_type_are_invalid_arguments(value, dtype):
    with pytest.raises(ServingError) as caught:
        json_codec.predict_inputs({"inputs": [value]}, {"x": dtype})
    assert caught.value.code == Code.INVALID_ARGUMENT
    assert "is not of expected type" in caught.value.message


def test_a_batch_answers_each_request_as_its_own_call_would():
    rng = np.random.default_rng(2)
    outputs = {
        "scores": rng.random((6, 3)).astype(np.float32),
        "tags": np.array([[b"a", b"b", b"c"]] * 5 + [[b"c", b"b", b"a"]], dtype=object),
    }
    requests = [
        (1, json_codec.Format.ROW),
        (3, json_codec.Format.COLUMN),
        (2, json_codec.Format.ROW),
    ]
    answers = json_codec.predict_responses(outputs, requests)
    start = 0
    for (rows, fmt), answer in zip(requests, answers, strict=True):
        own = {name: array[start : start + rows] for name, array in outputs.items()}
        assert answer == json_codec.predict_response(own, fmt)
        start += rows
