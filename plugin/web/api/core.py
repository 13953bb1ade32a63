"""The admin API's machinery: bearer auth, JSON errors, request parsing and the OpenAPI document.

Resources are flask-smorest blueprints nested in one ``api`` blueprint, so ``plugin.app``
registers the API as it registers any blueprint. Registering it also builds the OpenAPI document
from the resources' marshmallow schemas (served at ``/api/openapi.json``); flask-smorest's own
app-wide error handler is left out, so the rest of the app keeps its error bodies.

Every 4xx is ``{"error": "what was wrong", "details": {…}}``: bodies and query strings are
loaded with marshmallow, unknown fields rejected, and the marshmallow messages become
``details``. Database refusals that validation should have caught (a value too long, a unique
key taken by a concurrent request) are still answered 400/409, never 500.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from flask import Flask, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue
from flask_smorest import Api
from flask_smorest import Blueprint as SmorestBlueprint
from marshmallow import RAISE, Schema, fields
from sqlalchemy import func, select
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.orm import Session
from webargs.flaskparser import FlaskParser, abort, is_json_request
from werkzeug.exceptions import HTTPException

from plugin.admin.errors import AdminError
from plugin.models import Workspace
from plugin.services import Services
from plugin.workspaces import token_hash

log = logging.getLogger(__name__)

MAX_PER_PAGE = 200
BIGINT_MAX = 2**63 - 1
WHERE = {"json": "request body", "query": "query string", "querystring": "query string"}


class ErrorSchema(Schema):
    error = fields.String(required=True, metadata={"description": "What was wrong, for a person"})
    details = fields.Dict(metadata={"description": "Per field messages, or other specifics"})


class Parser(FlaskParser):
    """400 (not webargs' 422) for invalid input, and unknown fields refused everywhere."""

    DEFAULT_VALIDATION_STATUS = 400

    def __init__(self) -> None:
        super().__init__(unknown=RAISE)

    def load_json(self, req: Any, schema: Schema) -> Any:
        if not is_json_request(req) and req.get_data(cache=True):
            abort(400, messages={"json": ["send the body as JSON with Content-Type: application/json"]})
        return super().load_json(req, schema)


class Resource(SmorestBlueprint):
    """One resource of the API; its routes are tagged with its name in the OpenAPI document."""

    ARGUMENTS_PARSER = Parser()

    def route(self, rule: str, *, parameters: Any = None, tags: Any = None, **options: Any) -> Callable[..., Any]:
        return super().route(rule, parameters=parameters, tags=tags or [self.name], **options)  # type: ignore[no-any-return]


class _Docs(Api):  # type: ignore[misc]
    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self) -> None:
        """The API blueprint answers its own errors; the app's handlers stay as they are."""


class AdminApi(Resource):
    """The ``/api`` blueprint: registering it on an app also publishes its OpenAPI document."""

    def register(self, app: Any, options: dict[str, Any]) -> None:
        first = not any(bp is self for bp in app.blueprints.values())
        super().register(app, options)
        if first:
            _publish(app, self)


def _publish(app: Flask, blueprint: AdminApi) -> None:
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    docs = _Docs(
        spec_kwargs={
            "title": "Customer Milestones admin API",
            "version": "1",
            "openapi_version": "3.0.3",
            "info": {"description": "Bearer token (MILESTONES_ADMIN_TOKEN) scoped to one workspace."},
            "security": [{"bearer": []}],
        }
    )
    docs.init_app(app)
    docs.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    app.extensions["flask-smorest"]["blp_name_to_api"][blueprint.name] = docs
    blueprint.register_views_in_doc(docs, app, docs.spec, name=blueprint.name, parameters=None)
    for child, _ in blueprint._blueprints:
        docs.spec.tag({"name": child.name, "description": child.description})


def services() -> Services:
    return current_app.extensions["milestones"]  # type: ignore[no-any-return]


def session() -> Session:
    return g.session  # type: ignore[no-any-return]


def workspace_id() -> uuid.UUID:
    return g.workspace_id  # type: ignore[no-any-return]


def workspace() -> Workspace:
    row = session().get(Workspace, workspace_id())
    assert row is not None
    return row


class ApiError(Exception):
    def __init__(self, status: int, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.details = status, message, details


def error(status: int, message: str, details: Mapping[str, Any] | None = None) -> ResponseReturnValue:
    body: dict[str, Any] = {"error": message}
    if details:
        body["details"] = dict(details)
    return jsonify(body), status


def install(api: AdminApi) -> None:
    """Authentication, input guards and error answers for every route of ``api``."""

    @api.before_request
    def authenticate() -> ResponseReturnValue | None:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.startswith("Bearer ") else ""
        if not token:
            return error(401, "missing bearer token", {"header": "Authorization: Bearer <admin token>"})
        g.session = services().sessions()
        found = g.session.scalar(select(Workspace.id).where(Workspace.admin_token_hash == token_hash(token)))
        if found is None:
            return error(401, "invalid token")
        g.workspace_id = found
        return _guard_input()

    @api.teardown_request
    def close(_exc: BaseException | None) -> None:
        opened: Session | None = g.pop("session", None)
        if opened is not None:
            opened.close()

    @api.errorhandler(ApiError)
    def api_error(exc: ApiError) -> ResponseReturnValue:
        return error(exc.status, exc.message, exc.details)

    @api.errorhandler(AdminError)
    def admin_error(exc: AdminError) -> ResponseReturnValue:
        _rollback()
        return error(exc.status, exc.message, exc.details)

    @api.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        data = getattr(exc, "data", None) or {}
        messages = data.get("messages")
        if isinstance(messages, dict) and messages:
            location, details = next(iter(messages.items()))
            where = WHERE.get(str(location), str(location))
            return error(exc.code or 400, f"invalid {where}: {first_message(details)}", _as_dict(details))
        return error(exc.code or 500, exc.description or exc.name)

    @api.errorhandler(IntegrityError)
    def integrity_error(exc: IntegrityError) -> ResponseReturnValue:
        _rollback()
        log.info("admin API refused by a constraint: %s", exc.orig)
        return error(409, "conflicts with an existing row (changed meanwhile?); reload and try again")

    @api.errorhandler(DataError)
    def data_error(exc: DataError) -> ResponseReturnValue:
        _rollback()
        return error(400, f"a value does not fit: {str(exc.orig).splitlines()[0]}")

    @api.errorhandler(OperationalError)
    def unavailable(exc: OperationalError) -> ResponseReturnValue:
        _rollback()
        log.exception("database unavailable in the admin API")
        return error(503, "database unavailable, retry later")


def _rollback() -> None:
    opened: Session | None = g.get("session")
    if opened is not None:
        opened.rollback()


def _guard_input() -> ResponseReturnValue | None:
    """What PostgreSQL would refuse with a 500: ids past BIGINT, NUL characters in text."""
    for name, value in (request.view_args or {}).items():
        if isinstance(value, int) and value > BIGINT_MAX:
            return error(404, f"no such {name.removesuffix('_id')} {value}")
    if any("\x00" in key or "\x00" in value for key, value in request.args.items(multi=True)):
        return error(400, "invalid query string: text must not contain NUL characters")
    if is_json_request(request) and "\\u0000" in request.get_data(as_text=True):
        return error(400, "invalid request body: text must not contain NUL characters")
    return None


def first_message(messages: Any, path: str = "") -> str:
    """marshmallow's nested messages → ``settings.shop_domain: Missing data for required field.``"""
    if isinstance(messages, dict) and messages:
        key, inner = next(iter(messages.items()))
        name = str(key) if key != "_schema" else ""
        return first_message(inner, f"{path}.{name}".strip(".") if name else path)
    if isinstance(messages, list) and messages:
        return first_message(messages[0], path)
    return f"{path}: {messages}" if path else str(messages)


def _as_dict(details: Any) -> dict[str, Any]:
    return details if isinstance(details, dict) else {"_body": details}


def paginate(query: Any, args: Mapping[str, Any], serialize: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """One page of ``query`` (a select of rows or entities) with the total, as every list answers."""
    page, per_page = int(args["page"]), int(args["per_page"])
    db = session()
    total = db.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    rows = list(db.execute(query.limit(per_page).offset((page - 1) * per_page)).scalars().all())
    return {"items": [serialize(r) for r in rows] if serialize else rows, "total": total, "page": page,
            "per_page": per_page}


def not_found(what: str, ident: Any) -> NoReturn:
    raise ApiError(404, f"no {what} {ident}")
