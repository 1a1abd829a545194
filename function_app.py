"""The app this project deploys: the bundled durable workflows and entities, plus a few plain
functions."""

from __future__ import annotations

import json
import logging

import azure.functions as func

import activities
import entities
import orchestration as df
import workflows

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
for blueprint in (*workflows.BLUEPRINTS, *activities.BLUEPRINTS, *entities.BLUEPRINTS):
    app.register_functions(blueprint)


@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """Liveness probe."""
    return func.HttpResponse(json.dumps({"status": "ok"}), mimetype="application/json")


@app.route(route="hello/{name?}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
@app.queue_output(arg_name="greetings", queue_name="greetings", connection="AzureWebJobsStorage")
def hello(req: func.HttpRequest, greetings: func.Out[str]) -> func.HttpResponse:
    """Greet someone and queue the greeting for `log_greeting`."""
    name = req.route_params.get("name") or req.params.get("name") or "world"
    greetings.set(json.dumps({"name": name}))
    return func.HttpResponse(f"Hello, {name}!\n")


@app.queue_trigger(arg_name="msg", queue_name="greetings", connection="AzureWebJobsStorage")
def log_greeting(msg: func.QueueMessage) -> None:
    """Example queue trigger: log each greeting."""
    logging.info("greeted %s (dequeue count %s)", msg.get_json()["name"], msg.dequeue_count)
