"""TF Serving's checks of a :classify or :regress request and of the signature it names,
in its order and words (tensorflow_serving/servables/tensorflow/classifier.cc and
regressor.cc, and the REST handler's own).

The tagger and the other models this server is used with export predict signatures
only, which fail these checks with TF Serving's error. A model with a real classify or
regress signature passes them and is then refused with UNIMPLEMENTED: running those
signatures is not built.
"""

from __future__ import annotations

from typing import NoReturn

from serving.model_server import json_codec
from serving.model_server.errors import Code, ServingError, invalid_argument
from serving.model_server.servable import DEFAULT_SIGNATURE, Servable


def check_examples(doc: dict) -> None:
    """The request carries a non-empty 'examples' list (checked before the model is
    looked up, as TF Serving does)."""
    examples = doc.get("examples")
    if "examples" not in doc:
        # TF Serving says "classify" for both methods.
        raise json_codec.format_error(
            doc, "When method is classify, key 'examples' is expected and was not found"
        )
    if not isinstance(examples, list):
        raise json_codec.format_error(doc, "Expecting 'examples' value to be an list/array")
    if not examples:
        raise json_codec.format_error(doc, "'examples' value is an empty array")


def refuse_classify_regress(api: str, servable: Servable, signature: str) -> NoReturn:
    """The signature's checks for `api` ("classify" or "regress"), then UNIMPLEMENTED."""
    name = signature or DEFAULT_SIGNATURE
    if name not in servable.signature_defs:
        raise invalid_argument(f"No signature was found with the name: {name}")
    sig = servable.signature_defs[name]
    if len(sig.inputs) != 1:
        raise invalid_argument("Expected one input Tensor.")
    if api == "classify":
        if len(sig.outputs) not in (1, 2):
            raise invalid_argument(f"Expected one or two output Tensors, found {len(sig.outputs)}")
        if "inputs" not in sig.inputs:
            raise invalid_argument(f"No classification inputs found in SignatureDef: {sig}")
        if "classes" not in sig.outputs and "scores" not in sig.outputs:
            raise invalid_argument(
                "Expected classification signature outputs to contain at least one of "
                f'"classes" or "scores". Signature was: {sig}'
            )
    else:
        if len(sig.outputs) != 1:
            raise invalid_argument("Expected one output Tensor.")
        if "inputs" not in sig.inputs:
            raise invalid_argument(f"No regression inputs found in SignatureDef: {sig}")
        if "outputs" not in sig.outputs:
            raise invalid_argument(f"No regression outputs found in SignatureDef: {sig}")
    raise ServingError(Code.UNIMPLEMENTED, f"this server does not run {api} signatures ({name})")
