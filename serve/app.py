"""The Flask app: SageMaker's three routes, each a few lines over the task's handler.

load (``serve.model``, once per worker: picks the handler for the artifact's task) -> the
handler decodes, predicts and encodes (``serve.handlers``). The routes only negotiate content
types and read the body; they never branch on the task. Errors that carry a status become JSON
bodies; anything else is a bug, logged with its traceback and answered with a generic 500.
"""

from __future__ import annotations

import json
import logging
import socket
from http import HTTPStatus
from typing import IO

from flask import Flask, Request, Response, request
from gunicorn.http.errors import NoMoreData, ParseException
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from serve import contract
from serve.admission import Admission
from serve.batcher import Deadline
from serve.environment import ServingEnv
from serve.errors import BadInput, PayloadTooLarge, RequestTimeout, ServingError
from serve.loader import ModelSlot
from serve.negotiation import negotiate

log = logging.getLogger(__name__)

_ROUTES = (
    f"GET {contract.ROUTE_PING}, POST {contract.ROUTE_INVOCATIONS}, "
    f"GET {contract.ROUTE_EXECUTION_PARAMETERS}"
)
_READ_CHUNK = 1024 * 1024
# The WSGI environ key under which gunicorn passes the connection's socket.
_SOCKET_KEY = "gunicorn.socket"


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
        deadline = Deadline(env.timeout_s)
        with admission:
            handler = slot.get(wait_s=env.timeout_s)
            wanted = negotiate(request.headers, handler.decoders, handler.encoders,
                               default_accept=handler.default_accept)
            body = read_body(request, env.max_payload_bytes, deadline)
            answer = handler.answer(body, wanted, deadline)
            return Response(answer, status=HTTPStatus.OK, content_type=wanted.response_type)

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


def read_body(req: Request, limit: int, deadline: Deadline) -> bytes:
    """The body, refused with 413 by its Content-Length and again by the bytes actually read.

    A refused body up to twice the limit is read and dropped first, so a client that is still
    uploading reads the 413 instead of a connection reset; anything bigger is cut off. A body
    that breaks off or is malformed (bad chunk framing, a Content-Length longer than what
    arrives) is a 400; one that does not arrive before the deadline, a 408.
    """
    too_large = PayloadTooLarge(
        f"body is larger than {limit // (1024 * 1024)} MB; send fewer images per request, "
        f"or raise {contract.ENV_MAX_PAYLOAD_MB} (batch transform: MaxPayloadInMB)"
    )
    sock = _bound_reads(req, deadline)
    try:
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
    except TimeoutError as exc:
        raise RequestTimeout(
            f"the request body did not arrive within {contract.ENV_TIMEOUT}="
            f"{env_timeout(deadline)}s; send it at once, with a correct Content-Length"
        ) from exc
    except (ParseException, NoMoreData, OSError, ValueError) as exc:
        raise BadInput(
            f"the request body is malformed or cut off ({type(exc).__name__}: {exc}); send the "
            "whole body, with a Content-Length that matches it or valid chunked encoding"
        ) from exc
    finally:
        if sock is not None:
            sock.settimeout(None)  # the answer is written without a deadline
    if declared is not None and size < declared:
        raise BadInput(f"the request body has {size} bytes but Content-Length says {declared}")
    return b"".join(chunks)


def env_timeout(deadline: Deadline) -> str:
    return f"{deadline.timeout_s:g}" if deadline.timeout_s is not None else "-"


def _bound_reads(req: Request, deadline: Deadline) -> socket.socket | None:
    """A client that stops sending must not hold a thread past the deadline."""
    sock = req.environ.get(_SOCKET_KEY)
    remaining = deadline.remaining()
    if sock is None or remaining is None:
        return None
    sock.settimeout(max(0.1, remaining))
    return sock


def _drop(stream: IO[bytes], budget: int) -> None:
    while budget > 0 and (chunk := stream.read(min(_READ_CHUNK, budget))):
        budget -= len(chunk)


def _json(status: int, doc: object) -> Response:
    return Response(json.dumps(doc), status=status, content_type=contract.CT_JSON)


def _error(status: int, message: str) -> Response:
    return _json(status, {"status": int(status), "error": message})
