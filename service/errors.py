"""Domain errors and their HTTP mapping: the only place that turns exceptions into status codes.

Every error response has the same body, ``{"detail": <str>, "code": <str>}`` (validation errors
add ``"errors"``: the list of field problems). ``code`` is a stable machine-readable token;
``detail`` is a human-readable English message.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from matcher.errors import IndexNotReady, InvalidParameter, NoFeasibleAssignment, UnknownEntity

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    """The body of every error response."""

    detail: str
    code: str


class ValidationErrorBody(ErrorBody):
    """A 422 response: ``errors`` lists each invalid field."""

    errors: list[dict[str, Any]] = []


class ServiceError(Exception):
    """Base of the service's own errors; ``status`` and ``code`` define the response."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code


class NotAuthenticated(ServiceError):
    status = 401
    code = "not_authenticated"


class Forbidden(ServiceError):
    status = 403
    code = "forbidden"


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class Conflict(ServiceError):
    status = 409
    code = "conflict"


class VersionConflict(Conflict):
    """An optimistic-lock failure: the row changed since the client read it."""

    code = "version_conflict"


class InvalidRequest(ServiceError):
    status = 422
    code = "invalid_request"


class PayloadTooLarge(ServiceError):
    status = 413
    code = "payload_too_large"


class Unavailable(ServiceError):
    status = 503
    code = "unavailable"


#: Seconds a client is told to wait (``Retry-After``) when the store is busy.
STORE_RETRY_AFTER_S = 2

# Driver messages that mean "another transaction holds the lock" (SQLite) or "gave up waiting
# for a lock" (PostgreSQL lock_timeout, deadlock victim, serialisation failure).
_BUSY_MARKERS = (
    "database is locked",
    "database table is locked",
    "lock timeout",
    "canceling statement due to lock timeout",
    "deadlock detected",
    "could not serialize access",
    "could not obtain lock",
)


STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}

# Documented on every API route (FastAPI ``responses=``), so the OpenAPI schema is honest.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or invalid credentials"},
    403: {"model": ErrorBody, "description": "Authenticated but not allowed"},
    422: {"model": ValidationErrorBody, "description": "Invalid request"},
}


def error_response(status: int, detail: str, code: str | None = None, **extra: Any) -> JSONResponse:
    """A JSON error response with the standard body."""
    body: dict[str, Any] = {"detail": detail, "code": code or STATUS_CODES.get(status, "error")}
    body.update(extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(jsonable_encoder(body), status_code=status, headers=headers)


async def _service_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)  # noqa: S101 - registered for this type only
    resp = error_response(exc.status, exc.detail, exc.code)
    headers: dict[str, str] | None = getattr(exc, "headers", None)
    if headers:  # e.g. Retry-After of a login back-off
        resp.headers.update(headers)
    return resp


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    resp = error_response(exc.status_code, detail)
    if exc.headers:
        resp.headers.update(exc.headers)
    return resp


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    errors = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"])
    return error_response(
        422, f"{where}: {first['msg']}" if where else str(first["msg"]), errors=errors
    )


async def _index_not_ready(_request: Request, exc: Exception) -> JSONResponse:
    return error_response(
        503, f"index not ready: {exc}" if str(exc) else "index not ready", "index_not_ready"
    )


async def _unknown_entity(_request: Request, exc: Exception) -> JSONResponse:
    return error_response(404, f"unknown entity: {exc}", "unknown_entity")


async def _no_feasible(_request: Request, exc: Exception) -> JSONResponse:
    return error_response(409, f"no feasible assignment: {exc}", "no_feasible_assignment")


async def _invalid_parameter(_request: Request, exc: Exception) -> JSONResponse:
    return error_response(422, str(exc) or "invalid parameter", "invalid_parameter")


async def _store_busy(request: Request, exc: Exception) -> Response:
    """503 + Retry-After for a busy or unreachable store, never a 500.

    SQLAlchemy's ``OperationalError`` covers a lock still held after the bounded wait
    (SQLite ``busy_timeout``, PostgreSQL ``lock_timeout``), deadlock victims and a database
    that cannot be reached; its pool ``TimeoutError`` means every connection stayed in use.
    Either way the client should retry later, and nothing of the request was committed.
    """
    message = str(getattr(exc, "orig", None) or exc).lower()
    locked = isinstance(exc, sa_exc.TimeoutError) or any(m in message for m in _BUSY_MARKERS)
    code = "store_busy" if locked else "store_unavailable"
    log.warning("store %s on %s %s: %s", code, request.method, request.url.path, message[:200])
    headers = {"Retry-After": str(STORE_RETRY_AFTER_S)}
    if request.url.path.startswith("/staff"):
        # The staff pages are HTML: a readable page (no template: it must not need the store).
        return HTMLResponse(_BUSY_PAGE, status_code=503, headers=headers)
    resp = error_response(503, "the data store is busy; retry shortly", code)
    resp.headers.update(headers)
    return resp


_BUSY_PAGE = (
    '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    "<title>系统繁忙</title></head><body><h1>系统繁忙</h1>"
    f"<p>数据正在写入(例如批量导入),请约 {STORE_RETRY_AFTER_S} 秒后返回上一页重试。"
    "您的操作未被保存。</p></body></html>"
)


async def _unhandled(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal error", "internal_error")


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the standard body."""
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(IndexNotReady, _index_not_ready)
    app.add_exception_handler(UnknownEntity, _unknown_entity)
    app.add_exception_handler(NoFeasibleAssignment, _no_feasible)
    app.add_exception_handler(InvalidParameter, _invalid_parameter)
    app.add_exception_handler(sa_exc.OperationalError, _store_busy)
    app.add_exception_handler(sa_exc.TimeoutError, _store_busy)
    try:  # the embeddings layer's "no build yet" is the same condition for a client
        from embeddings.errors import IndexNotFound

        app.add_exception_handler(IndexNotFound, _index_not_ready)
    except ImportError:  # pragma: no cover
        pass
    app.add_exception_handler(Exception, _unhandled)
