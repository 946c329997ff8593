"""RFC 9457 problem details: one exception family, one handler, stable `type` URIs."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Annotated, Any

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
from litestar.types import Empty
from litestar.utils.scope.state import ScopeState
from sqlalchemy import exc as sa_exc

from spotless.lib.request_context import current_request_id, incoming_request_id
from spotless.lib.validation import collect, describe

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

    def __init__(self, field: str, message: str, code: str = "invalid_value") -> None:
        super().__init__(
            400,
            "validation-error",
            "The request is not valid",
            message,
            errors=[{"field": field, "message": message, "code": code}],
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


def _body_issues(request: Request[Any, Any, Any] | None) -> list[dict[str, str]] | None:
    """Every invalid field of the body (lib/validation.py), from the JSON the request already decoded;
    None when there is no decoded body to walk."""
    if request is None:
        return None
    try:
        parameter = request.route_handler.parsed_fn_signature.parameters.get("data")
        decoded = ScopeState.from_scope(request.scope).json
        dec_hook = request.route_handler.default_deserializer
    except Exception:  # no route matched
        return None
    if parameter is None or decoded is Empty:
        return None
    issues = collect(decoded, parameter.annotation, dec_hook)
    return [issue.as_dict() for issue in issues] or None


def _litestar_issue(item: dict[str, Any], request: Request[Any, Any, Any] | None) -> dict[str, str]:
    field = str(item.get("key") or item.get("source") or "body")
    if item.get("source") != "body":
        field = _wire_name(request, field)
    message = str(item.get("message", "invalid"))
    if message.startswith("Expected ") or message.startswith("Object ") or message.startswith("Invalid "):
        _, code, message = describe(msgspec.ValidationError(message))
    else:
        code = "invalid_value"
    return {"field": field, "message": message, "code": code}


def _validation_errors(extra: Any, request: Request[Any, Any, Any] | None = None) -> list[dict[str, str]]:
    """Query, path and header errors as Litestar found them (worded), and every body error at once."""
    items = (
        [i for i in extra if isinstance(i, dict)] if isinstance(extra, Sequence) and not isinstance(extra, str) else []
    )
    errors = [_litestar_issue(i, request) for i in items if i.get("source") != "body"]
    if any(i.get("source") == "body" for i in items):
        errors.extend(
            _body_issues(request) or [_litestar_issue(i, request) for i in items if i.get("source") == "body"]
        )
    return errors


def _summary(errors: list[dict[str, str]]) -> str:
    """One sentence naming every invalid field, for a person reading the problem."""
    if not errors:
        return ""
    parts = [f"{e['field']} {e['message']}" for e in errors[:5]]
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more + "."


def _from_http_exception(exc: HTTPException, request: Request[Any, Any, Any] | None = None) -> ProblemDetailsException:
    slug, title = _status_default(exc.status_code)
    extra: dict[str, Any] = {}
    detail = exc.detail
    if isinstance(exc, ValidationException):
        extra["errors"] = _validation_errors(exc.extra, request)
        detail = _summary(extra["errors"]) or detail
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


# --- database errors (during the handler and at commit) -----------------------------------------

# Set on the ASGI scope by the handler below when a request failed on a serialization failure or a
# deadlock: the unit of work (db/unit_of_work.py) then runs the whole request once more.
RETRY_SCOPE_KEY = "spotless.retry_unit_of_work"
_RETRYABLE_STATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected
# The server ended the connection: admin/crash shutdown, cannot connect now, idle-in-transaction timeout.
_CONNECTION_STATES = frozenset({"57P01", "57P02", "57P03", "25P03", "25P04"})
_CONSTRAINT_PROBLEMS: dict[str, Callable[[], ProblemDetailsException]] = {}


def register_constraint_problem(constraint: str, problem: Callable[[], ProblemDetailsException]) -> None:
    """The precise problem for a named constraint (or trigger raising with CONSTRAINT = ...),
    used wherever it is refused: in a service's flush or at commit (deferred)."""
    _CONSTRAINT_PROBLEMS[constraint] = problem


def registered_problem(exc: BaseException) -> ProblemDetailsException | None:
    """The registered problem of the constraint `exc` violated, if it names one."""
    db = _dbapi_error(exc)
    constraint = _pg_attribute(db, "constraint_name") if db is not None else None
    factory = _CONSTRAINT_PROBLEMS.get(constraint) if constraint else None
    return factory() if factory else None


def _pg_attribute(exc: sa_exc.DBAPIError, name: str) -> Any:
    orig = exc.orig
    value = getattr(orig, name, None)
    if value is None:
        value = getattr(getattr(orig, "__cause__", None), name, None)
    return value


def _sqlstate(exc: sa_exc.DBAPIError) -> str:
    return str(_pg_attribute(exc, "sqlstate") or "")


def _dbapi_error(exc: BaseException) -> sa_exc.DBAPIError | None:
    """The database error behind `exc` (advanced-alchemy wraps them in its repository errors)."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return None
        if isinstance(seen, sa_exc.DBAPIError):
            return seen
        seen = seen.__cause__
    return None


def db_failure_reason(exc: BaseException) -> str:
    """A small, stable label for metrics and logs."""
    db = _dbapi_error(exc)
    if db is None:
        return "other"
    state = _sqlstate(db)
    if db.connection_invalidated or state.startswith("08") or state in _CONNECTION_STATES:
        return "connection"
    if state.startswith("23"):
        return "constraint"
    if state.startswith("22"):
        return "data"
    if state == "57014":
        return "timeout"
    if state == "40001":
        return "serialization"
    if state == "40P01":
        return "deadlock"
    if state == "55P03":
        return "lock"
    if isinstance(db, sa_exc.InterfaceError | sa_exc.OperationalError):
        return "connection"
    return "other"


def is_retryable(exc: BaseException) -> bool:
    db = _dbapi_error(exc)
    return db is not None and _sqlstate(db) in _RETRYABLE_STATES


def _problem(
    status: int, slug: str, title: str, detail: str, retry_after: int | None = None, **extra: Any
) -> ProblemDetailsException:
    return ProblemDetailsException(
        detail=detail,
        status_code=status,
        type_=PROBLEM_BASE + slug,
        title=title,
        headers={"Retry-After": str(retry_after)} if retry_after is not None else None,
        extra=extra or None,
    )


def database_problem(exc: BaseException, *, at_commit: bool = False) -> ProblemDetailsException:
    """What a client is told when the database refused or failed, never the SQL or its values.
    Classes 22 and 23 are the client's doing (400, 409); a timeout or a lost connection is ours
    and temporary (503 with Retry-After); a conflict with a concurrent transaction is a 409."""
    db = _dbapi_error(exc)
    reason = db_failure_reason(exc)
    state = _sqlstate(db) if db is not None else ""
    if reason == "data":
        return _problem(
            400,
            "validation-error",
            "The request is not valid",
            "A value in the request cannot be stored (out of range or containing invalid characters).",
            errors=[],
        )
    if reason == "constraint":
        constraint = _pg_attribute(db, "constraint_name") if db is not None else None
        if constraint in _CONSTRAINT_PROBLEMS:
            return _CONSTRAINT_PROBLEMS[constraint]()
        if not at_commit:
            logger.warning("unmapped integrity error %s", state)
        return _problem(409, "conflict", "Conflicts with the current state", "The change conflicts with existing data.")
    if reason == "timeout":
        return _problem(
            503,
            "database-timeout",
            "The database took too long",
            "The request ran past the database's time limit and nothing was changed; retry shortly or narrow it.",
            retry_after=2,
        )
    if reason in ("serialization", "deadlock"):
        return _problem(
            409,
            "transaction-conflict",
            "A concurrent change conflicted with this one",
            "Another request changed the same data at the same moment and nothing was changed; retry.",
            retry_after=1,
        )
    if reason == "lock":
        return _problem(
            409,
            "resource-busy",
            "The resource is being changed by another request",
            "Another request holds this resource right now and nothing was changed; retry shortly.",
            retry_after=1,
        )
    if reason == "connection" or at_commit:
        return _problem(
            503,
            "database-unavailable",
            "The database is unavailable",
            "The change could not be stored (the database connection failed); nothing was changed, retry shortly.",
            retry_after=2,
        )
    return _from_unhandled(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))


def _database_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if is_retryable(exc):
        request.scope[RETRY_SCOPE_KEY] = True  # type: ignore[literal-required]
    reason = db_failure_reason(exc)
    if reason in ("timeout", "serialization", "deadlock", "lock", "connection"):
        logger.warning("database refused the request: %s", reason)
    return _render(request, database_problem(exc))


def _unhandled_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    # advanced-alchemy's repositories wrap database errors (a timeout, a deadlock) in their own.
    if _dbapi_error(exc) is not None:
        return _database_handler(request, exc)
    return _render(request, _from_unhandled(exc))


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
    # Raised in a middleware, the error is rendered outside the request's context: the id the
    # outer observer gave the request is on its scope state (it is the id the access line carries).
    request_id = current_request_id() or request.scope.get("state", {}).get("request_id")
    if request_id is None:
        # Routing failed before our middleware ran (unknown path, wrong method): id and echo here.
        request_id = incoming_request_id(request.scope) or uuid.uuid4().hex
        response.headers["X-Request-ID"] = request_id
    body["request_id"] = request_id
    if isinstance(body.get("errors"), list):
        # Every field error has a code (FieldIssue); a service's own rule without one is `invalid_value`.
        body["errors"] = [{"code": "invalid_value", **e} if isinstance(e, dict) else e for e in body["errors"]]
    response.content = body
    return response


render_problem = _render  # for answers built outside a route handler (a failed commit)


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
        sa_exc.DBAPIError: _database_handler,
        Exception: _unhandled_handler,
    }


class FieldIssue(msgspec.Struct):
    field: Annotated[str, msgspec.Meta(description="Path of the invalid value, e.g. `addresses[0].postal_code`")]
    message: Annotated[str, msgspec.Meta(description="What is wrong, in words, e.g. `is required`")]
    code: Annotated[
        str,
        msgspec.Meta(
            description="Stable kind of error to translate: required, unknown_field, invalid_type, too_short, "
            "too_long, out_of_range, invalid_format, invalid_choice, invalid_value"
        ),
    ]


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
    412: "`If-Match` names a version that is no longer current (`/problems/precondition-failed`)",
    413: "Request body too large (`/problems/payload-too-large`)",
    415: "The body is not JSON (`/problems/unsupported-media-type`)",
    429: "Rate limited (`/problems/rate-limited`, with `Retry-After`)",
    503: "A dependency is unavailable or timed out; retry after `Retry-After` (`/problems/service-unavailable`)",
}

BEARER_SCHEME = "BearerToken"
# Handler arguments Litestar fills in from the app, never from the client.
_INJECTED = {"db_session", "principal", "org", "ctx", "state", "request", "identity", "settings", "headers", "scope"}
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def _has_reference(annotation: Any) -> bool:
    """Whether a type carries an id the server must look up (a UUID anywhere in it): an id that does
    not exist, or belongs to another organisation, answers 404."""
    try:
        info = msgspec.inspect.type_info(annotation)
    except Exception:  # a type msgspec cannot describe (a dependency): not client input
        return False
    seen: set[int] = set()

    def walk(node: msgspec.inspect.Type) -> bool:
        if id(node) in seen:
            return False
        seen.add(id(node))
        if isinstance(node, msgspec.inspect.UUIDType):
            return True
        if isinstance(node, msgspec.inspect.StructType | msgspec.inspect.DataclassType):
            return any(walk(f.type) for f in node.fields)
        if isinstance(node, msgspec.inspect.UnionType):
            return any(walk(t) for t in node.types)
        item = getattr(node, "item_type", None)
        if isinstance(item, msgspec.inspect.Type):
            return walk(item)
        value = getattr(node, "value_type", None)
        return isinstance(value, msgspec.inspect.Type) and walk(value)

    return walk(info)


def _statuses(handler: Any, path: str) -> set[int]:
    """The problem statuses an operation can answer, derived from what it takes:
    400 always (a bad Host header, a malformed parameter or body); 401/403 unless public; 404 for
    an id in the path, the body or a required query parameter; 409 for every write (state conflicts, idempotency,
    serialization failures); 413 and 415 with a body; 429 unless exempt from limiting; 503 for anything
    that touches the database or Redis (a statement timeout, a lost connection)."""
    opt = handler.opt
    public = bool(opt.get("public"))
    parameters = {name: p for name, p in handler.parsed_fn_signature.parameters.items() if name not in _INJECTED}
    statuses = {400}
    if not public:
        statuses |= {401, 403}
    if opt.get("rate_limit") != "exempt":
        statuses.add(429)
    # An optional id in the query is a filter (no match is an empty list); a required one, a lookup.
    lookups = [p for name, p in parameters.items() if name == "data" or not (p.has_default or p.is_optional)]
    if "{" in path or any(_has_reference(p.annotation) for p in lookups):
        statuses.add(404)
    if set(handler.http_methods) & _UNSAFE:
        statuses.add(409)
    if "data" in parameters:
        statuses |= {413, 415}
    uses_io = not public or any(n in handler.parsed_fn_signature.parameters for n in ("db_session", "state", "request"))
    if uses_io:
        statuses.add(503)
    return statuses


def _problem_spec(status: int) -> ResponseSpec:
    return ResponseSpec(
        data_container=ProblemDocument,
        description=_DOCUMENTED.get(status, "Request failed"),
        media_type="application/problem+json",
        generate_examples=False,
    )


def document_problem_responses(app: Litestar) -> None:
    """Document, on each operation, the problem+json responses it can answer and (unless public)
    the bearer token it needs, so the OpenAPI names every status a client can see."""
    from litestar.handlers import HTTPRouteHandler
    from litestar.openapi.spec import Components, SecurityScheme

    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if not isinstance(handler, HTTPRouteHandler) or not handler.include_in_schema:
                continue
            existing = dict(handler.responses or {})
            for status in sorted(_statuses(handler, route.path)):
                existing.setdefault(status, _problem_spec(status))
            handler.responses = existing
            if not handler.opt.get("public"):
                handler.security = [{BEARER_SCHEME: []}]
    config = app.openapi_config
    if config is not None:
        components = config.components if isinstance(config.components, list) else [config.components]
        scheme = SecurityScheme(type="http", scheme="bearer", bearer_format="JWT", description="Access token")
        config.components = [*components, Components(security_schemes={BEARER_SCHEME: scheme})]


def problems(*codes: int) -> dict[int, ResponseSpec]:
    """Explicit error responses for a route whose codes the defaults above would not guess (e.g. a 404
    for an id in the body); `document_problem_responses` fills in the rest."""
    return {code: _problem_spec(code) for code in sorted({401, 403, *codes})}
