"""Durable Functions' entity API: read, signal and list entities over HTTP.

Below `/{routePrefix}/`, behind the management key like the instance API:

    GET    durabletask/entities/{entityName}                 list (paged: x-ms-continuation-token)
    GET    durabletask/entities/{entityName}/{entityKey}     state (404 if it does not exist)
    POST   durabletask/entities/{entityName}/{entityKey}?op={operation}   signal (202)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import azure.functions as func

from orchestration.core.entities import EntityId, InvalidEntityIdError
from orchestration.functions.management.common import (
    answer,
    client_for,
    error,
    guarded,
    page_answer,
    page_token,
    route_value,
)
from orchestration.functions.management.validation import (
    BadRequest,
    parse_bool,
    parse_event_name,
    parse_function_name,
    parse_instance_id,
    parse_json_body,
    parse_top,
)

if TYPE_CHECKING:
    from orchestration.functions.engine import Engine

ROUTE = "durabletask/entities"
DEFAULT_PAGE = 100


def _entity(request: func.HttpRequest) -> EntityId:
    name = parse_function_name(route_value(request, "entityName"), "Entity name")
    key = route_value(request, "entityKey")
    try:
        entity = EntityId(name, key)
    except InvalidEntityIdError as failure:
        raise BadRequest("Invalid entity id", str(failure)) from None
    parse_instance_id(str(entity), "Entity id")
    return entity


@guarded
async def get_entity(engine: Engine, request: func.HttpRequest) -> func.HttpResponse:
    entity = _entity(request)
    client = await client_for(engine, request)
    response = await client.read_entity_state(entity)
    if not response.entity_exists:
        return error(404, "Entity not found", f"Entity {str(entity)!r} does not exist.")
    return answer(response.entity_state)


@guarded
async def signal_entity(engine: Engine, request: func.HttpRequest) -> func.HttpResponse:
    entity = _entity(request)
    if engine.registry.entity(entity.name) is None:
        return error(404, "No such entity", f"No entity named {entity.name!r} is registered.")
    operation = request.params.get("op")
    if not operation:
        raise BadRequest("Missing query parameter", "op (the operation's name) is required.")
    parse_event_name(operation)
    value = parse_json_body(request.get_body(), engine.settings.max_request_bytes)
    client = await client_for(engine, request)
    await client.signal_entity(entity, operation, value)
    return answer({"id": str(entity), "operation": operation}, 202)


@guarded
async def list_entities(engine: Engine, request: func.HttpRequest) -> func.HttpResponse:
    name = parse_function_name(route_value(request, "entityName"), "Entity name")
    params = request.params
    fetch_state = parse_bool(params, "fetchState", False)
    top = parse_top(params) or DEFAULT_PAGE
    client = await client_for(engine, request)
    found, next_token = await client.list_entities(
        name, top, page_token(request), fetch_state=fetch_state
    )
    entities = [m.to_json() for m in found]
    if not fetch_state:
        for entry in entities:
            entry.pop("state", None)
    return page_answer(entities, next_token)
