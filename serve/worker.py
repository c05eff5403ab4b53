"""gunicorn's threaded worker, with errors it answers itself written as JSON.

gunicorn answers requests it cannot parse (a bad request line or header, a duplicate
Content-Length, headers too large, bad chunk framing) before the app sees them, with an HTML
page. This worker writes the same statuses as the app's JSON errors,
``{"status": 400, "error": "..."}``, and never a 5xx for a client's mistake. It also never
writes a second answer on a connection whose request was already answered (a malformed body
found while draining it after the app replied): it closes that connection instead.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http import HTTPStatus
from typing import Any

from gunicorn import util
from gunicorn.http import errors
from gunicorn.http.wsgi import Response, default_environ
from gunicorn.workers.gthread import ThreadWorker

# Parse errors whose status is not 400.
_STATUS = {
    errors.LimitRequestLine: HTTPStatus.REQUEST_URI_TOO_LONG,
    errors.LimitRequestHeaders: HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
    errors.ExpectationFailed: HTTPStatus.EXPECTATION_FAILED,
    errors.ForbiddenProxyRequest: HTTPStatus.FORBIDDEN,
}
# Client errors that are not ParseExceptions.
_CLIENT_ERRORS = (errors.ParseException, errors.NoMoreData)
# Our own response headers gunicorn refused: our bug, not the client's.
_SERVER_ERRORS = (errors.InvalidResponseHeader, errors.InvalidResponseHeaderName,
                  errors.ConfigurationProblem)


def classify(exc: BaseException) -> tuple[HTTPStatus, str]:
    """(status, message for the client) for an error gunicorn raised outside the app."""
    if isinstance(exc, _CLIENT_ERRORS) and not isinstance(exc, _SERVER_ERRORS):
        status = next((s for kind, s in _STATUS.items() if isinstance(exc, kind)),
                      HTTPStatus.BAD_REQUEST)
        detail = str(exc) or type(exc).__name__
        return status, f"malformed HTTP request ({type(exc).__name__}: {detail}); fix the " \
            "request line, headers or body framing"
    return HTTPStatus.INTERNAL_SERVER_ERROR, \
        "internal server error; the container log has the details"


def json_error(status: HTTPStatus, message: str) -> bytes:
    body = json.dumps({"status": int(status), "error": message}).encode()
    head = (f"HTTP/1.1 {int(status)} {status.phrase}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


class JsonErrorWorker(ThreadWorker):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._answered = threading.local()

    def handle_request(self, req: Any, conn: Any) -> Any:
        self._answered.request = None
        keepalive = super().handle_request(req, conn)
        self._answered.request = req  # errors from here on come after the answer
        return keepalive

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        if req is not None and getattr(self._answered, "request", None) is req:
            self.log.info("closing the connection after a malformed request body: %s", exc)
            return  # already answered: the connection is closed by the caller
        status, message = classify(exc)
        addr = addr or ("", -1)
        if status >= 500:
            self.log.exception("error handling a request outside the app")
        else:
            self.log.warning("invalid request from %s: %s", addr[0], exc)
        try:
            util.write_nonblock(client, json_error(status, message))
            # Unread request bytes would make the close a reset that can discard the answer.
            util.close_graceful(client, timeout=1.0)
        except Exception:
            self.log.debug("could not send the error answer")
        self._access_log(req or getattr(exc, "req", None), client, addr, status)

    def _access_log(self, req: Any, client: Any, addr: Any, status: HTTPStatus) -> None:
        """The access-log line gunicorn writes for its own errors; a request that broke off
        half-parsed may not have what the line needs."""
        if req is None:
            return
        try:
            environ = default_environ(req, client, self.cfg)
            environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = addr[0], str(addr[1])
            resp = Response(req, client, self.cfg)
            resp.status = f"{int(status)} {status.phrase}"
            resp.response_length = 0
            self.log.access(resp, req, environ, timedelta(0))
        except Exception:
            self.log.debug("no access-log line for a half-parsed request")
