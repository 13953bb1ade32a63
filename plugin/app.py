"""The application factory: configuration, services and blueprints, nothing at import time."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from plugin import config as config_module
from plugin import services as services_module
from plugin.config import Settings


def create_app(config: Settings | dict[str, Any] | None = None) -> Flask:
    settings = config_module.build(config)
    app = Flask(__name__, instance_relative_config=False)
    app.config.update(SECRET_KEY=settings.secret_key, TESTING=settings.testing, JSON_SORT_KEYS=False)

    services = services_module.Services.create(settings)
    services_module.activate(services)
    app.extensions["milestones"] = services

    from plugin.slack.interactions import slack
    from plugin.web import ingest
    from plugin.web.api import api
    from plugin.web.console import console
    from plugin.web.health import health

    app.register_blueprint(health)
    app.register_blueprint(api)
    app.register_blueprint(slack)
    app.register_blueprint(console)
    _register_error_handlers(app)
    app.wsgi_app = ingest.mount(app.wsgi_app, services)  # type: ignore[method-assign,assignment]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return app


def _register_error_handlers(app: Flask) -> None:
    """Every error is JSON with a message; an unexpected one is logged and answered 500 JSON."""

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        return jsonify(error=exc.name, message=exc.description), exc.code or 500
