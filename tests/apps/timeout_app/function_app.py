"""Test app: functions outliving host.json functionTimeout (one second)."""

from __future__ import annotations

import asyncio
import time

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="hang-async")
async def hang_async(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(60)
    return func.HttpResponse("too late")


@app.route(route="hang-sync")
def hang_sync(req: func.HttpRequest) -> func.HttpResponse:
    time.sleep(3)
    return func.HttpResponse("too late")


@app.route(route="quick")
def quick(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("quick")
