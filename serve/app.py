"""The Flask app: SageMaker's three routes, each a few lines over the named steps.

load (``serve.loader``, once per worker) -> decode (``serve.decoders``) -> predict
(``serve.model``) -> encode (``serve.encoders``). Segmentation artifacts take the same steps
with ``serve.segmentation``'s tables. Errors that carry a status become JSON bodies;
anything else is a bug, logged with its traceback and answered with a generic 500.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import IO

from flask import Flask, Request, Response, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from common.artifact import TASK_SEGMENTATION
from serve import contract
from serve.admission import Admission
from serve.decoders import DECODERS
from serve.encoders import ENCODERS
from serve.environment import ServingEnv
from serve.errors import PayloadTooLarge, ServingError
from serve.loader import ModelSlot
from serve.model import Classifier, predict, predict_segmentation
from serve.negotiation import negotiate
from serve.segmentation import DEFAULT_ACCEPT as SEGMENTATION_DEFAULT_ACCEPT
from serve.segmentation import SEGMENTATION_DECODERS, SEGMENTATION_ENCODERS

log = logging.getLogger(__name__)

_ROUTES = (
    f"GET {contract.ROUTE_PING}, POST {contract.ROUTE_INVOCATIONS}, "
    f"GET {contract.ROUTE_EXECUTION_PARAMETERS}"
)
_READ_CHUNK = 1024 * 1024


def create_app(env: ServingEnv, slot: ModelSlot) -> Flask:
    app = Flask(__name__)
    admission = Admission(max(1, env.threads - 1))

    @app.get(contract.ROUTE_PING)
    def ping() -> Response:
        slot.get()  # 503 with the reason until the model is loaded and warmed up
        return Response(status=HTTPStatus.OK)

    @app.get(contract.ROUTE_EXECUTION_PARAMETERS)
    def execution_parameters() -> Response:
        return _json(HTTPStatus.OK, execution_parameters_body(env))

    @app.post(contract.ROUTE_INVOCATIONS)
    def invocations() -> Response:
        with admission:
            classifier = slot.get(wait_s=env.timeout_s)
            if getattr(classifier.meta, "task", None) == TASK_SEGMENTATION:
                return segment(classifier)
            wanted = negotiate(request.headers, DECODERS, ENCODERS)
            decoded = DECODERS[wanted.request_type](read_body(request, env.max_payload_bytes))
            probabilities = predict(classifier, decoded.images, timeout_s=env.timeout_s)
            body = ENCODERS[wanted.response_type](
                probabilities, decoded.batch, classifier.meta.class_names, wanted.options
            )
            return Response(body, status=HTTPStatus.OK, content_type=wanted.response_type)

    def segment(segmenter: Classifier) -> Response:
        """One image in; a PNG mask or per-pixel probabilities out (``serve.segmentation``)."""
        wanted = negotiate(request.headers, SEGMENTATION_DECODERS, SEGMENTATION_ENCODERS,
                           default_accept=SEGMENTATION_DEFAULT_ACCEPT)
        decoded = SEGMENTATION_DECODERS[wanted.request_type](
            read_body(request, env.max_payload_bytes))
        probabilities = predict_segmentation(segmenter, decoded.images[0], env.timeout_s)
        body = SEGMENTATION_ENCODERS[wanted.response_type](probabilities)
        return Response(body, status=HTTPStatus.OK, content_type=wanted.response_type)

    @app.errorhandler(ServingError)
    def serving_error(exc: ServingError) -> Response:
        return _error(exc.status, exc.message)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        if isinstance(exc, MethodNotAllowed):
            allowed = sorted(exc.valid_methods or ())
            useful = ", ".join(m for m in allowed if m not in ("HEAD", "OPTIONS"))
            response = _error(HTTPStatus.METHOD_NOT_ALLOWED, f"{request.path} takes {useful}")
            response.headers["Allow"] = ", ".join(allowed)
            return response
        if exc.code == HTTPStatus.NOT_FOUND:
            return _error(HTTPStatus.NOT_FOUND, f"no such path {request.path}; use {_ROUTES}")
        return _error(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def bug(exc: Exception) -> Response:
        log.exception("unhandled error answering %s %s", request.method, request.path)
        return _error(
            HTTPStatus.INTERNAL_SERVER_ERROR,
            "internal server error; the container log has the details",
        )

    return app


def execution_parameters_body(env: ServingEnv) -> dict[str, object]:
    return {
        "MaxConcurrentTransforms": env.max_concurrent_transforms,
        "BatchStrategy": env.batch_strategy,
        "MaxPayloadInMB": env.max_payload_mb,
    }


def read_body(req: Request, limit: int) -> bytes:
    """The body, refused with 413 by its Content-Length and again by the bytes actually read.

    A refused body up to twice the limit is read and dropped first, so a client that is still
    uploading reads the 413 instead of a connection reset; anything bigger is cut off.
    """
    too_large = PayloadTooLarge(
        f"body is larger than {limit // (1024 * 1024)} MB; send fewer images per request, "
        f"or raise {contract.ENV_MAX_PAYLOAD_MB} (batch transform: MaxPayloadInMB)"
    )
    declared = req.content_length
    if declared is not None and declared > limit:
        _drop(req.stream, declared if declared <= 2 * limit else 0)
        raise too_large
    chunks, size = [], 0
    while chunk := req.stream.read(min(_READ_CHUNK, limit + 1 - size)):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            _drop(req.stream, limit)
            raise too_large
    return b"".join(chunks)


def _drop(stream: IO[bytes], budget: int) -> None:
    while budget > 0 and (chunk := stream.read(min(_READ_CHUNK, budget))):
        budget -= len(chunk)


def _json(status: int, doc: object) -> Response:
    return Response(json.dumps(doc), status=status, content_type=contract.CT_JSON)


def _error(status: int, message: str) -> Response:
    return _json(status, {"status": int(status), "error": message})
