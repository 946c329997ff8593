"""RFC 9457 problem details: one exception family, one handler, stable `type` URIs."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
from advanced_alchemy.exceptions import (
    DuplicateKeyError,
    ForeignKeyError,
    IntegrityError,
    NotFoundError,
)
from litestar import Litestar, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.plugins.problem_details import ProblemDetailsConfig, ProblemDetailsException, ProblemDetailsPlugin
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from sqlalchemy import exc as sa_exc

from spotless.lib.request_context import current_request_id, incoming_request_id

logger = logging.getLogger("spotless.errors")

PROBLEM_BASE = "/problems/"

_TITLES_BY_STATUS = {
    400: ("validation-error", "The request is not valid"),
    401: ("unauthenticated", "Authentication required"),
    403: ("forbidden", "You do not have permission for this action"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    409: ("conflict", "Conflicts with the current state"),
    413: ("payload-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    429: ("rate-limited", "Too many requests"),
    500: ("internal-error", "Internal server error"),
    503: ("service-unavailable", "A dependency is unavailable"),
}


class Problem(ProblemDetailsException):
    """Raise anywhere: becomes problem+json with `type` = /problems/<slug>."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str = "",
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(
            detail=detail or title,
            status_code=status,
            type_=PROBLEM_BASE + slug,
            title=title,
            headers=headers,
            extra=extra or None,
        )


class FieldError(Problem):
    """A 400 for a rule the schema cannot express (a bad timezone, a past date ...)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(
            400,
            "validation-error",
            "The request is not valid",
            message,
            errors=[{"field": field, "message": message}],
        )


def not_found(resource: str = "resource") -> Problem:
    return Problem(404, "not-found", "Not found", f"The {resource} does not exist.")


def conflict(slug: str, detail: str, **extra: Any) -> Problem:
    return Problem(409, slug, "Conflicts with the current state", detail, **extra)


def _status_default(status: int) -> tuple[str, str]:
    return _TITLES_BY_STATUS.get(status, (f"http-{status}", "Request failed"))


def _wire_name(request: Request[Any, Any, Any] | None, key: str) -> str:
    """The name the client sent: Litestar reports the handler's argument (`from_`, `day`), not the
    query parameter or header it is read from (`from`, `date`)."""
    try:
        parameter = request.route_handler.parsed_fn_signature.parameters.get(key) if request else None
    except Exception:  # no route matched: nothing to translate
        return key
    kwarg = getattr(parameter, "kwarg_definition", None)
    return str(getattr(kwarg, "query", None) or getattr(kwarg, "header", None) or getattr(kwarg, "cookie", None) or key)


def _validation_errors(extra: Any, request: Request[Any, Any, Any] | None = None) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    if isinstance(extra, Sequence) and not isinstance(extra, str):
        for item in extra:
            if isinstance(item, dict):
                field = item.get("key") or item.get("source") or "body"
                if item.get("source") != "body":
                    field = _wire_name(request, str(field))
                errors.append({"field": str(field), "message": str(item.get("message", "invalid"))})
    return errors


def _from_http_exception(exc: HTTPException, request: Request[Any, Any, Any] | None = None) -> ProblemDetailsException:
    slug, title = _status_default(exc.status_code)
    extra: dict[str, Any] = {}
    detail = exc.detail
    if isinstance(exc, ValidationException):
        extra["errors"] = _validation_errors(exc.extra, request)
        # Litestar puts the whole msgspec message in detail; keep it, it names the field.
    elif isinstance(exc.extra, dict):
        extra.update(exc.extra)
    if exc.status_code == 404 and detail in ("Not Found", ""):
        detail = "The requested resource does not exist."
    return ProblemDetailsException(
        detail=detail,
        status_code=exc.status_code,
        type_=PROBLEM_BASE + slug,
        title=title,
        headers=exc.headers,
        extra=extra or None,
    )


def _from_not_found(exc: NotFoundError) -> ProblemDetailsException:
    return ProblemDetailsException(
        detail="The requested resource does not exist.",
        status_code=404,
        type_=PROBLEM_BASE + "not-found",
        title="Not found",
    )


def _from_integrity(exc: IntegrityError) -> ProblemDetailsException:
    # Constraint names are ours and say what conflicted; never echo the SQL or the row values.
    slug = "duplicate" if isinstance(exc, DuplicateKeyError) else "conflict"
    if isinstance(exc, ForeignKeyError):
        slug = "invalid-reference"
    return ProblemDetailsException(
        detail="The change conflicts with existing data.",
        status_code=409,
        type_=PROBLEM_BASE + slug,
        title="Conflicts with the current state",
    )


def _sqlstate(exc: sa_exc.DBAPIError) -> str:
    orig = exc.orig
    return str(getattr(orig, "sqlstate", None) or getattr(getattr(orig, "__cause__", None), "sqlstate", None) or "")


def _from_database(exc: sa_exc.DBAPIError) -> ProblemDetailsException:
    """Classes 22 (data) and 23 (integrity) are the client's doing: 400 and 409, never a 500.
    Services map the constraints they expect to precise problems; this is the safety net."""
    state = _sqlstate(exc)
    if state.startswith("22"):
        return ProblemDetailsException(
            detail="A value in the request cannot be stored (out of range or containing invalid characters).",
            status_code=400,
            type_=PROBLEM_BASE + "validation-error",
            title="The request is not valid",
            extra={"errors": []},
        )
    if state.startswith("23"):
        logger.warning("unmapped integrity error %s", state)
        return ProblemDetailsException(
            detail="The change conflicts with existing data.",
            status_code=409,
            type_=PROBLEM_BASE + "conflict",
            title="Conflicts with the current state",
        )
    return _from_unhandled(exc)


def _from_unhandled(exc: Exception) -> ProblemDetailsException:
    logger.exception("unhandled error", exc_info=exc)
    return ProblemDetailsException(
        detail="An unexpected error occurred; it has been logged with this request's id.",
        status_code=HTTP_500_INTERNAL_SERVER_ERROR,
        type_=PROBLEM_BASE + "internal-error",
        title="Internal server error",
    )


def _render(request: Request[Any, Any, Any], exc: ProblemDetailsException) -> Response[Any]:
    if exc.type_ is None:
        slug, title = _status_default(exc.status_code)
        exc.type_ = PROBLEM_BASE + slug
        exc.title = exc.title or title
    exc.instance = exc.instance or request.url.path
    response = exc.to_response(request)
    body = dict(response.content)
    request_id = current_request_id()
    if request_id is None:
        # Routing failed before our middleware ran (unknown path, wrong method): id and echo here.
        request_id = incoming_request_id(request.scope) or uuid.uuid4().hex
        response.headers["X-Request-ID"] = request_id
    body["request_id"] = request_id
    response.content = body
    return response


def problem_details_plugin() -> ProblemDetailsPlugin:
    return ProblemDetailsPlugin(ProblemDetailsConfig(exception_handler=_render))


def _handler(
    convert: Callable[[Any], ProblemDetailsException],
) -> Callable[[Request[Any, Any, Any], Any], Response[Any]]:
    def handle(request: Request[Any, Any, Any], exc: Any) -> Response[Any]:
        return _render(request, convert(exc))

    return handle


def _handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    return _render(request, _from_http_exception(exc, request))


def exception_handlers() -> dict[int | type[Exception], Callable[[Request[Any, Any, Any], Any], Response[Any]]]:
    """Every exception becomes problem+json through `_render` (request id, instance, stable type)."""
    return {
        HTTPException: _handle_http_exception,
        NotFoundError: _handler(_from_not_found),
        IntegrityError: _handler(_from_integrity),
        sa_exc.DBAPIError: _handler(_from_database),
        Exception: _handler(_from_unhandled),
    }


class FieldIssue(msgspec.Struct):
    field: str
    message: str


class ProblemDocument(msgspec.Struct, omit_defaults=True):
    """The RFC 9457 body every error response has (documented on every operation)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    request_id: str
    errors: list[FieldIssue] | None = None


_DOCUMENTED = {
    400: "The request is not valid (`/problems/validation-error`, with `errors`)",
    401: "Missing or invalid credentials (`/problems/unauthenticated`)",
    403: "Authenticated but lacking the permission (`/problems/forbidden`)",
    404: "Not found, or belongs to another organisation (`/problems/not-found`)",
    409: "Conflicts with the current state (see `type`)",
    429: "Rate limited (`/problems/rate-limited`, with `Retry-After`)",
}


def document_problem_responses(app: Litestar) -> None:
    """Add the problem+json responses each operation can answer to its OpenAPI entry."""
    from litestar.handlers import HTTPRouteHandler

    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if not isinstance(handler, HTTPRouteHandler) or not handler.include_in_schema:
                continue
            public = bool(handler.opt.get("public"))
            methods = set(handler.http_methods)
            statuses = {400, 429}
            if not public:
                statuses |= {401, 403}
            if "{" in route.path:
                statuses.add(404)
            if methods & {"POST", "PUT", "PATCH", "DELETE"}:
                statuses.add(409)
            existing = dict(handler.responses or {})
            for status in sorted(statuses):
                existing.setdefault(
                    status,
                    ResponseSpec(
                        data_container=ProblemDocument,
                        description=_DOCUMENTED[status],
                        media_type="application/problem+json",
                        generate_examples=False,
                    ),
                )
            handler.responses = existing


def problems(*codes: int) -> dict[int, ResponseSpec]:
    """Explicit error responses for a route whose codes the defaults above would not guess (e.g. a 404
    for an id in the body); `document_problem_responses` fills in the rest."""
    return {
        code: ResponseSpec(
            data_container=ProblemDocument,
            description=_DOCUMENTED.get(code, "Request failed"),
            media_type="application/problem+json",
            generate_examples=False,
        )
        for code in sorted({401, 403, *codes})
    }
