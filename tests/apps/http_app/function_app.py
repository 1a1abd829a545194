"""Test app: routes, constraints, methods, auth levels, response mapping, failures."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def _echo(req: func.HttpRequest, name: str) -> func.HttpResponse:
    document = {
        "function": name,
        "route_params": dict(req.route_params),
        "params": dict(req.params),
        "method": req.method,
        "pid": os.getpid(),
    }
    return func.HttpResponse(json.dumps(document), mimetype="application/json")


@app.route(route="items/{id:int}", methods=["GET"])
def item_by_id(req: func.HttpRequest) -> func.HttpResponse:
    return _echo(req, "item_by_id")


@app.route(route="items/{name:alpha}", methods=["GET"])
def item_by_name(req: func.HttpRequest) -> func.HttpResponse:
    return _echo(req, "item_by_name")


@app.route(route="items/new", methods=["GET"])
def item_new(req: func.HttpRequest) -> func.HttpResponse:
    return _echo(req, "item_new")


@app.route(route="things/{id:guid}/{flag:bool}")
def thing(req: func.HttpRequest) -> func.HttpResponse:
    return _echo(req, "thing")


@app.route(route="maybe/{x?}", methods=["GET"])
def maybe(req: func.HttpRequest) -> func.HttpResponse:
    return _echo(req, "maybe")


@app.route(route="files/{*path}", methods=["GET"])
def files(req: func.HttpRequest) -> func.HttpResponse:
    return _echo(req, "files")


@app.route(route="only-post", methods=["POST"])
def only_post(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(req.get_body(), status_code=201, mimetype="application/octet-stream")


@app.route(route="secret", auth_level=func.AuthLevel.FUNCTION)
def secret(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("function level ok")


@app.route(route="manage", auth_level=func.AuthLevel.ADMIN)
def manage(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("admin level ok")


@app.route(route="custom", methods=["GET"])
def custom(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(
        "<p>teapot</p>",
        status_code=418,
        headers={"X-Test": "yes"},
        mimetype="text/html",
    )


@app.route(route="boom")
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("boom on purpose")


@app.route(route="slow-sync")
def slow_sync(req: func.HttpRequest) -> func.HttpResponse:
    logging.info("slow-sync started")
    deadline = time.monotonic() + float(req.params.get("seconds", "2"))
    while time.monotonic() < deadline:
        time.sleep(0.05)
    return func.HttpResponse("slept")


@app.route(route="async-hello")
async def async_hello(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    await asyncio.sleep(0)
    return func.HttpResponse(json.dumps({"invocation_id": context.invocation_id}))


@app.route(route="enqueue", methods=["POST"])
@app.queue_output(arg_name="out", queue_name="%OUT_QUEUE%", connection="AzureWebJobsStorage")
def enqueue(req: func.HttpRequest, out: func.Out[str]) -> func.HttpResponse:
    out.set(req.get_body().decode())
    return func.HttpResponse("queued", status_code=202)


@app.route(route="small-body", methods=["POST"], trigger_extra_fields={"maxRequestBodySize": 1024})
def small_body(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps({"length": len(req.get_body())}), mimetype="application/json"
    )


@app.route(route="body-length", methods=["POST"])
def body_length(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps({"length": len(req.get_body())}), mimetype="application/json"
    )
