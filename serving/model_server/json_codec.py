"""TF Serving's JSON tensor codec: request bodies to named arrays, outputs back to JSON.

It follows tensorflow_serving/util/json_tensor.cc rule for rule, with its messages: the
row ("instances") and column ("inputs") forms, shapes taken from the first element at
each level, {"b64": ...} for binary strings, lossless-number checks, "predictions" vs
"outputs", one output's name left out, outputs named *_bytes sent back as {"b64": ...},
and floats printed the way TF Serving prints them (float_text.py).
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import json
import math
from collections.abc import Mapping, Sequence
from json.encoder import encode_basestring  # the C implementation where available

import numpy as np
from tensorflow.core.framework import types_pb2

from serving.model_server import float_text
from serving.model_server.errors import Code, ServingError, invalid_argument

INSTANCES, INPUTS, SIGNATURE = "instances", "inputs", "signature_name"
B64 = "b64"
BYTES_SUFFIX = "_bytes"

# DataType enum -> (DataTypeString, numpy dtype) for the types JSON can carry.
DTYPES: dict[int, tuple[str, type]] = {
    types_pb2.DT_FLOAT: ("float", np.float32),
    types_pb2.DT_DOUBLE: ("double", np.float64),
    types_pb2.DT_INT32: ("int32", np.int32),
    types_pb2.DT_INT16: ("int16", np.int16),
    types_pb2.DT_INT8: ("int8", np.int8),
    types_pb2.DT_UINT8: ("uint8", np.uint8),
    types_pb2.DT_STRING: ("string", object),
    types_pb2.DT_INT64: ("int64", np.int64),
    types_pb2.DT_BOOL: ("bool", np.bool_),
    types_pb2.DT_UINT32: ("uint32", np.uint32),
    types_pb2.DT_UINT64: ("uint64", np.uint64),
}


class Format(enum.Enum):
    ROW = "row"  # "instances" in, "predictions" out
    COLUMN = "column"  # "inputs" in, "outputs" out


def dtype_string(dtype: int) -> str:
    if dtype in DTYPES:
        return DTYPES[dtype][0]
    return types_pb2.DataType.Name(dtype).removeprefix("DT_").lower()


# --- parsing ---------------------------------------------------------------------------


def parse_document(body: bytes) -> dict:
    """The request body as a JSON object, or INVALID_ARGUMENT worded as TF Serving's."""
    if not body:
        raise invalid_argument("JSON Parse error: The document is empty")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise invalid_argument(
            f"JSON Parse error: Invalid encoding in string. at offset: {e.start}"
        ) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise invalid_argument(f"JSON Parse error: {e.msg} at offset: {e.pos}") from None
    except RecursionError:
        raise invalid_argument("JSON Parse error: nesting too deep") from None
    if not isinstance(doc, dict):
        raise format_error(doc, "Is not object")
    return doc


def signature_name(doc: dict) -> str:
    name = doc.get(SIGNATURE, "")
    if not isinstance(name, str):
        raise invalid_argument(
            f"JSON Value: {to_text(doc)} not formatted correctly. "
            "'signature_name' key must be a string value."
        )
    return name


def predict_inputs(
    doc: dict, input_dtypes: Mapping[str, int]
) -> tuple[Format, dict[str, np.ndarray]]:
    """Named input arrays from a parsed predict request, for a signature's input dtypes."""
    if not input_dtypes:
        raise invalid_argument(
            f"Failed to get input map for signature: {doc.get(SIGNATURE) or 'DEFAULT'}"
        )
    if INSTANCES in doc:
        if INPUTS in doc:
            raise format_error(
                doc,
                f"Not formatted correctly expecting only one of '{INPUTS}' or "
                f"'{INSTANCES}' keys to exist ",
            )
        instances = doc[INSTANCES]
        if not isinstance(instances, list):
            raise format_error(doc, f"Excepting '{INSTANCES}' to be an list/array")
        if not instances:
            raise format_error(doc, f"No values in '{INSTANCES}' array")
        return Format.ROW, _from_instances(instances, input_dtypes)
    if INPUTS in doc:
        return Format.COLUMN, _from_inputs(doc[INPUTS], input_dtypes)
    raise invalid_argument("Missing 'inputs' or 'instances' key")


def _from_instances(instances: list, dtypes: Mapping[str, int]) -> dict[str, np.ndarray]:
    if not isinstance(instances[0], dict) and len(dtypes) > 1:
        raise invalid_argument(
            "instances is a plain list, but expecting list of objects as multiple input "
            "tensors required as per tensorinfo_map"
        )
    objects = _is_element_object(instances[0])
    names = sorted(dtypes)
    values: dict[str, list] = {}
    shapes: dict[str, tuple[list[int], int]] = {}

    def add(item, name: str) -> None:
        if name not in dtypes:
            raise invalid_argument(f"JSON object: does not have named input: {name}")
        shape, flat = _dense(item, dtypes[name])
        size = len(flat)
        if name not in shapes:
            shapes[name] = (shape, size)
        elif shapes[name][1] != size:
            raise invalid_argument(f"Expecting tensor size: {shapes[name][1]} but got: {size}")
        elif shapes[name][0] != shape:
            raise invalid_argument(
                f"Expecting shape {_shape_text(shapes[name][0])} but got: {_shape_text(shape)}"
            )
        values.setdefault(name, []).extend(flat)

    for i, element in enumerate(instances):
        if objects:
            if not _is_element_object(element):
                raise invalid_argument(f"Expecting object but got list at item {i} of input list")
            for name, item in element.items():
                try:
                    add(item, name)
                except ServingError as e:
                    raise invalid_argument(
                        f"Failed to process element: {i} key: {name} of 'instances' list. "
                        f"Error: {e}"
                    ) from None
            if sorted(element) != names:
                raise invalid_argument(
                    f"Failed to process element: {i} of 'instances' list. JSON object: "
                    f"{to_text(element)} must only have keys: {','.join(names)}"
                )
        else:
            if _is_element_object(element):
                raise invalid_argument(
                    f"Expecting value/list but got object at item {i} of input list"
                )
            try:
                add(element, names[0])
            except ServingError as e:
                raise invalid_argument(
                    f"Failed to process element: {i} of 'instances' list. Error: {e}"
                ) from None
    return {
        name: _array(values[name], [len(instances), *shapes[name][0]], dtypes[name])
        for name in values
    }


def _from_inputs(value, dtypes: Mapping[str, int]) -> dict[str, np.ndarray]:
    if not isinstance(value, dict) or _is_b64(value):
        if len(dtypes) > 1:
            raise invalid_argument(
                "inputs is a plain value/list, but expecting an object as multiple input "
                "tensors required as per tensorinfo_map"
            )
        ((name, dtype),) = dtypes.items()
        shape, flat = _dense(value, dtype)
        return {name: _array(flat, shape, dtype)}
    out = {}
    for name, dtype in dtypes.items():
        if name not in value:
            raise invalid_argument(f"Missing named input: {name} in 'inputs' object.")
        shape, flat = _dense(value[name], dtype)
        out[name] = _array(flat, shape, dtype)
    return out


def _dense(value, dtype: int) -> tuple[list[int], list]:
    """Shape (from the first element at each level) and flat values of a nested list."""
    shape = []
    probe = value
    while isinstance(probe, list):
        shape.append(len(probe))
        if not probe:
            break
        probe = probe[0]
    flat: list = []
    _fill(value, 0, shape, dtype, flat)
    return shape, flat


def _fill(value, level: int, shape: list[int], dtype: int, flat: list) -> None:
    rank = len(shape)
    if not isinstance(value, list):
        if level != rank:
            raise invalid_argument(
                f"JSON Value: {to_text(value)} found at incorrect level: {level + 1} in the "
                f"JSON DOM. Expected at level: {rank}"
            )
        flat.append(_scalar(value, dtype))
        return
    if level >= rank:
        raise invalid_argument(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise invalid_argument(
            f"Encountered list at unexpected size: {len(value)} at level: {level} "
            f"expected size: {shape[level]}"
        )
    if level == rank - 1 and dtype == types_pb2.DT_STRING and all(type(v) is str for v in value):
        flat.extend(v.encode("utf-8", "surrogatepass") for v in value)  # the common case
        return
    for v in value:
        _fill(v, level + 1, shape, dtype, flat)


_INT_RANGES = {
    types_pb2.DT_INT32: (-(2**31), 2**31 - 1),
    # TF Serving accepts any int32 here and lets the cast wrap; a type error is kinder.
    types_pb2.DT_INT16: (-(2**15), 2**15 - 1),
    types_pb2.DT_INT8: (-(2**7), 2**7 - 1),
    types_pb2.DT_UINT8: (0, 2**8 - 1),
    types_pb2.DT_INT64: (-(2**63), 2**63 - 1),
    types_pb2.DT_UINT32: (0, 2**32 - 1),
    types_pb2.DT_UINT64: (0, 2**64 - 1),
}
_FLOAT_LIMITS = {
    types_pb2.DT_FLOAT: ("float", 2**24 - 1, float(np.finfo(np.float32).max)),
    types_pb2.DT_DOUBLE: ("double", 2**53 - 1, float(np.finfo(np.float64).max)),
}


def _scalar(value, dtype: int):
    if isinstance(value, dict):
        if dtype != types_pb2.DT_STRING:
            raise _type_error(value, dtype)
        return _b64_decode(value)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if dtype in _FLOAT_LIMITS:
        if not number:
            raise _type_error(value, dtype)
        target, max_int, max_float = _FLOAT_LIMITS[dtype]
        lossless = not math.isfinite(value) or (
            abs(value) <= max_int if isinstance(value, int) else abs(value) <= max_float
        )
        if not lossless:
            raise invalid_argument(
                f"Cannot convert JSON value: {to_text(value)} to {target} without loss of "
                "precision."
            )
        return value
    if dtype in _INT_RANGES:
        low, high = _INT_RANGES[dtype]
        if not (isinstance(value, int) and not isinstance(value, bool) and low <= value <= high):
            raise _type_error(value, dtype)
        return value
    if dtype == types_pb2.DT_STRING:
        if not isinstance(value, str):
            raise _type_error(value, dtype)
        return value.encode("utf-8", "surrogatepass")
    if dtype == types_pb2.DT_BOOL:
        if not isinstance(value, bool):
            raise _type_error(value, dtype)
        return value
    raise ServingError(
        Code.UNIMPLEMENTED,
        f"Conversion of JSON Value: {to_text(value)} to type: {dtype_string(dtype)}",
    )


def _b64_decode(value: dict) -> bytes:
    if not _is_b64(value):
        raise invalid_argument(
            f"JSON Value: {to_text(value)} not formatted correctly for base64 data"
        )
    text = value[B64]
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise invalid_argument("Unable to base64 decode") from None


def _array(flat: list, shape: list[int], dtype: int) -> np.ndarray:
    np_dtype = DTYPES[dtype][1]
    if np_dtype is object:
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        return out.reshape(shape)
    return np.asarray(flat, dtype=np_dtype).reshape(shape)


def _is_b64(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(B64), str)


def _is_element_object(value) -> bool:
    return isinstance(value, dict) and not _is_b64(value)


def _shape_text(shape: list[int]) -> str:
    return "[" + ",".join(map(str, shape)) + "]"


def _type_error(value, dtype: int) -> ServingError:
    return invalid_argument(
        f"JSON Value: {to_text(value)} Type: {json_type(value)} is not of expected type: "
        f"{dtype_string(dtype)}"
    )


def format_error(value, message: str) -> ServingError:
    return invalid_argument(f"JSON Value: {to_text(value)} {message}")


def json_type(value) -> str:
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def to_text(value) -> str:
    """A JSON value as text, for error messages."""
    return json.dumps(value, ensure_ascii=False)


# --- writing ---------------------------------------------------------------------------


def predict_response(outputs: Mapping[str, np.ndarray], fmt: Format) -> bytes:
    """The JSON body TF Serving answers a predict request with."""
    tokens = _all_tokens(outputs)
    return _render({name: array.shape for name, array in outputs.items()}, tokens, fmt)


def predict_responses(
    outputs: Mapping[str, np.ndarray], requests: Sequence[tuple[int, Format]]
) -> list[bytes]:
    """The answers to requests whose rows ran as one batch, in order, as (rows, format).

    Every value is written once for the whole batch: the per-call cost of numpy and of
    the float checks is then shared by all the requests in it.
    """
    tokens = _all_tokens(outputs)
    sizes = {name: math.prod(array.shape[1:]) for name, array in outputs.items()}
    answers, start = [], 0
    for rows, fmt in requests:
        shapes = {name: (rows, *array.shape[1:]) for name, array in outputs.items()}
        mine = {
            name: tokens[name][start * sizes[name] : (start + rows) * sizes[name]]
            for name in outputs
        }
        answers.append(_render(shapes, mine, fmt))
        start += rows
    return answers


def _all_tokens(outputs: Mapping[str, np.ndarray]) -> dict[str, list[str]]:
    if not outputs:
        raise invalid_argument("Cannot convert empty tensor map to JSON")
    return {name: _tokens(name, array) for name, array in outputs.items()}


def _render(shapes: Mapping[str, tuple], tokens: Mapping[str, list[str]], fmt: Format) -> bytes:
    if fmt is Format.COLUMN:
        parts = {name: _nest(tokens[name], list(shape)) for name, shape in shapes.items()}
        return b'{"outputs":' + _maybe_named(parts).encode() + b"}"
    batch = 0
    for name, shape in shapes.items():
        if not shape:
            raise invalid_argument(f"Tensor name: {name} has no shape information ")
        if shape[0] < 1:
            raise invalid_argument(f"Tensor name: {name} has invalid batch size: {shape[0]}")
        if batch and shape[0] != batch:
            raise invalid_argument(
                f"Tensor name: {name} has inconsistent batch size: {shape[0]} expecting: {batch}"
            )
        batch = shape[0]
    rows = []
    for row in range(batch):
        parts = {}
        for name, shape in shapes.items():
            inner = list(shape[1:])
            size = math.prod(inner)
            parts[name] = _nest(tokens[name][row * size : (row + 1) * size], inner)
        rows.append(_maybe_named(parts))
    return ('{"predictions":[' + ",".join(rows) + "]}").encode()


def _maybe_named(parts: dict[str, str]) -> str:
    if len(parts) == 1:
        return next(iter(parts.values()))
    return "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in parts.items()) + "}"


def _nest(tokens: list[str], shape: list[int]) -> str:
    if not shape:
        return tokens[0]
    if len(shape) == 1:
        return "[" + ",".join(tokens) + "]"
    step = math.prod(shape[1:])
    return (
        "["
        + ",".join(_nest(tokens[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0]))
        + "]"
    )


def _tokens(name: str, array: np.ndarray) -> list[str]:
    flat = array.reshape(-1)
    kind = flat.dtype.kind
    if kind == "f":
        return float_text.float_tokens(flat)
    if kind == "b":
        return ["true" if v else "false" for v in flat.tolist()]
    if kind in "iu":
        return [str(v) for v in flat.tolist()]
    if kind in "OSa":
        values = flat.tolist()
        as_b64 = name.endswith(BYTES_SUFFIX)
        # Row by row, so that a batch of rows that repeat is looked up once per change.
        step = math.prod(array.shape[1:]) if array.ndim > 1 else len(values)
        if not 0 < step <= _CACHED_STRINGS_MAX:
            return _string_tokens(tuple(values), as_b64)
        tokens, last, last_tokens = [], None, ()
        for start in range(0, len(values), step):
            row = tuple(values[start : start + step])
            if row != last:
                last, last_tokens = row, _cached_string_tokens(row, as_b64)
            tokens.extend(last_tokens)
        return tokens
    raise invalid_argument(f"Failed to write JSON value for tensor type: {flat.dtype}")


def _string_tokens(values: tuple, as_b64: bool) -> list[str]:
    if as_b64:
        return ['{"b64":"' + base64.b64encode(v).decode() + '"}' for v in values]
    return [encode_basestring(v.decode("utf-8", "replace")) for v in values]


# A model's string outputs often repeat from call to call (the tagger returns the same
# 100 tag names on every row), and encoding them was a large part of each request.
_CACHED_STRINGS_MAX = 4096
_cached_string_tokens = functools.lru_cache(maxsize=256)(_string_tokens)
