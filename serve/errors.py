"""Errors that carry their HTTP status; their message is safe to show the client.

Anything else raised while serving a request is a bug: the app logs its traceback and answers a
generic 500 (see ``serve.app``).
"""

from __future__ import annotations

from http import HTTPStatus


class ServingError(Exception):
    status: HTTPStatus = HTTPStatus.BAD_REQUEST

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadInput(ServingError):
    """The body cannot be decoded, or decodes to something that is not an image batch."""

    status = HTTPStatus.BAD_REQUEST


class UnsupportedContentType(ServingError):
    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE


class NotAcceptable(ServingError):
    status = HTTPStatus.NOT_ACCEPTABLE


class PayloadTooLarge(ServingError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class Unavailable(ServingError):
    """The model is not ready, or this worker's queue is full; the client may retry."""

    status = HTTPStatus.SERVICE_UNAVAILABLE


class RequestTimeout(ServingError):
    """The request body did not arrive before the deadline."""

    status = HTTPStatus.REQUEST_TIMEOUT
