"""The OpenAPI 3.0 document of the management API (`/{routePrefix}/durabletask/openapi.json`)."""

from __future__ import annotations

from typing import Any

from orchestration.core.status import OrchestrationRuntimeStatus
from orchestration.functions.management.validation import MAX_REASON_CHARS, MAX_TOP
from orchestration.storage.names import MAX_EVENT_NAME_LENGTH, MAX_INSTANCE_ID_LENGTH

_REF_ERROR = {"$ref": "#/components/schemas/Error"}
_JSON_ERROR = {"application/json": {"schema": _REF_ERROR}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": _JSON_ERROR}


def _path_param(name: str, max_length: int, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1, "maxLength": max_length},
    }


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


_BOOL = {"type": "boolean"}
_TIME = {"type": "string", "format": "date-time"}
_STATUSES = [s.value for s in OrchestrationRuntimeStatus]
_INSTANCE_ID = _path_param("instanceId", MAX_INSTANCE_ID_LENGTH, "The instance id.")
_REASON = _query("reason", {"type": "string", "maxLength": MAX_REASON_CHARS}, "Why.")
_ANY_JSON = {"description": "Any JSON value", "nullable": True}
_JSON_ANY = {"application/json": {"schema": _ANY_JSON}}
_ENTITY_NAME = _path_param("entityName", 128, "The entity's name.")
_ENTITY_KEY = _path_param("entityKey", MAX_INSTANCE_ID_LENGTH - 130, "The entity's key.")
_POISON_QUEUE = _path_param("queue", 63, "An engine queue of the hub (control, workitems, starts).")
_MESSAGE_ID = _path_param("messageId", 64, "The message id, as the listing gives it.")
_JSON_BODY = {"required": False, "content": {"application/json": {"schema": _ANY_JSON}}}
_CHECK_STATUS = {
    "description": "Started: the check-status payload (management URLs).",
    "headers": {"Location": {"schema": {"type": "string"}}},
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CheckStatus"}}},
}
_FILTERS = [
    _query("createdTimeFrom", _TIME, "Instances created at or after this time."),
    _query("createdTimeTo", _TIME, "Instances created at or before this time."),
    _query(
        "runtimeStatus",
        {"type": "string"},
        f"Comma-separated runtime statuses: {', '.join(_STATUSES)}.",
    ),
]


def _operation(
    summary: str,
    responses: dict[str, Any],
    parameters: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    tag: str = "Durable Functions",
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "tags": [tag],
        "parameters": parameters or [],
        "responses": {
            **responses,
            "400": _error("Invalid input"),
            "401": {"description": "Missing or wrong key"},
        },
    }
    if body is not None:
        operation["requestBody"] = body
    return operation


def _steer(verb: str, gone: str = "410") -> dict[str, Any]:
    return {
        "post": _operation(
            f"{verb.capitalize()} an instance",
            {
                "202": {"description": "Accepted"},
                "404": _error("No such instance"),
                gone: _error("The instance's status does not allow it"),
            },
            [_INSTANCE_ID, _REASON],
        )
    }


def _dapr_steer(verb: str, code: str) -> dict[str, Any]:
    return {
        "post": _operation(
            f"{verb.capitalize()} a workflow instance",
            {
                "202": {"description": "Accepted"},
                "404": _error("No such instance"),
                code: _error("The instance's status does not allow it"),
            },
            [_INSTANCE_ID, _REASON],
            tag="Dapr",
        )
    }


def _link_paths(paths: dict[str, Any]) -> dict[str, Any]:
    """The instance paths again below durabletask/links, behind the instance's link code."""
    key_root, link_root = "/durabletask/instances/{instanceId}", "/durabletask/links/{instanceId}"
    linked: dict[str, Any] = {}
    for path, item in paths.items():
        if not path.startswith(key_root):
            continue
        linked[link_root + path[len(key_root) :]] = {
            method: {
                **operation,
                "summary": f"{operation['summary']} (through its link)",
                "tags": ["Instance links"],
                "security": [{"instanceLinkCode": []}],
                "responses": {
                    **operation["responses"],
                    "401": {"description": "Missing or wrong link code"},
                },
            }
            for method, operation in item.items()
        }
    return linked


def _dapr_versions(paths: dict[str, Any]) -> dict[str, Any]:
    """The Dapr paths again below Dapr's older API versions, and Dapr 1.10's alpha forms
    that took the instance id in the path."""
    older: dict[str, Any] = {}
    for version in ("v1.0-beta1", "v1.0-alpha1"):
        for path, item in paths.items():
            if path.startswith("/v1.0/"):
                older[f"/{version}/{path[len('/v1.0/') :]}"] = {
                    method: {**operation, "summary": f"{operation['summary']} {version}"}
                    for method, operation in item.items()
                }
    by_name = "/v1.0-alpha1/workflows/dapr/{workflowName}/{instanceId}"
    name = _path_param("workflowName", 128, "Workflow name")
    start = paths["/v1.0/workflows/dapr/{workflowName}/start"]["post"]
    get = paths["/v1.0/workflows/dapr/{instanceId}"]["get"]
    older[f"{by_name}/start"] = {
        "post": {
            **start,
            "summary": "Start a workflow with a chosen instance id (Dapr 1.10)",
            "parameters": [name, _INSTANCE_ID],
        }
    }
    older[by_name] = {
        "get": {
            **get,
            "summary": "A workflow instance (Dapr 1.10)",
            "parameters": [name, _INSTANCE_ID],
        }
    }
    return older


def document(route_prefix: str) -> dict[str, Any]:
    """The API's OpenAPI document; paths are relative to the server `/{route_prefix}`."""
    status_ok = {
        "description": "The instance's status",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}},
    }
    paths: dict[str, Any] = {
        "/orchestrators/{functionName}/{instanceId}": {
            "post": _operation(
                "Start an orchestration with a chosen instance id",
                {
                    "202": _CHECK_STATUS,
                    "409": _error("The instance exists and is running"),
                    "413": _error("Body too large"),
                },
                [_path_param("functionName", 128, "Orchestrator name"), _INSTANCE_ID],
                _JSON_BODY,
            )
        },
        "/orchestrators/{functionName}": {
            "post": _operation(
                "Start an orchestration",
                {"202": _CHECK_STATUS, "413": _error("Body too large")},
                [_path_param("functionName", 128, "Orchestrator name")],
                _JSON_BODY,
            )
        },
        "/durabletask/instances": {
            "get": _operation(
                "Query instances (paged through the x-ms-continuation-token header)",
                {
                    "200": {
                        "description": "One page of statuses",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/Status"},
                                }
                            }
                        },
                    }
                },
                [
                    *_FILTERS,
                    _query("instanceIdPrefix", {"type": "string"}, "Ids starting with this."),
                    _query("name", {"type": "string", "maxLength": 128}, "Orchestrator name."),
                    _query("showInput", _BOOL, "Include inputs (default true)."),
                    _query(
                        "top",
                        {"type": "integer", "minimum": 1, "maximum": MAX_TOP},
                        "Page size (default 100).",
                    ),
                    {
                        "name": "x-ms-continuation-token",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string"},
                    },
                ],
            ),
            "delete": _operation(
                "Purge finished instances by filter",
                {"200": {"description": "Purged"}, "404": _error("Nothing matched")},
                _FILTERS,
            ),
        },
        "/durabletask/instances/{instanceId}": {
            "get": _operation(
                "An instance's status",
                {
                    "200": status_ok,
                    "202": status_ok,
                    "404": _error("No such instance"),
                    "500": {"description": "Failed, with returnInternalServerErrorOnFailure"},
                },
                [
                    _INSTANCE_ID,
                    _query("showHistory", _BOOL, "Include historyEvents."),
                    _query("showHistoryOutput", _BOOL, "Include inputs/results in history."),
                    _query("showInput", _BOOL, "Include the input (default true)."),
                    _query("returnInternalServerErrorOnFailure", _BOOL, "500 when Failed."),
                ],
            ),
            "delete": _operation(
                "Purge a finished instance",
                {
                    "200": {"description": "Purged"},
                    "404": _error("No such instance"),
                    "412": _error("Still running"),
                },
                [_INSTANCE_ID],
            ),
        },
        "/durabletask/instances/{instanceId}/raiseEvent/{eventName}": {
            "post": _operation(
                "Send an event to a running instance",
                {
                    "202": {"description": "Accepted"},
                    "404": _error("No such instance"),
                    "410": _error("The instance has finished"),
                    "413": _error("Body too large"),
                },
                [_INSTANCE_ID, _path_param("eventName", MAX_EVENT_NAME_LENGTH, "Event name")],
                _JSON_BODY,
            )
        },
        "/durabletask/instances/{instanceId}/terminate": _steer("terminate"),
        "/durabletask/instances/{instanceId}/suspend": _steer("suspend"),
        "/durabletask/instances/{instanceId}/resume": _steer("resume"),
        "/durabletask/instances/{instanceId}/rewind": _steer("rewind", "412"),
        "/durabletask/instances/{instanceId}/restart": {
            "post": _operation(
                "Start the instance's orchestrator again with the same input",
                {
                    "202": _CHECK_STATUS,
                    "404": _error("No such instance"),
                    "409": _error("Same id and still running"),
                },
                [_INSTANCE_ID, _query("restartWithNewInstanceId", _BOOL, "Default true.")],
            )
        },
        "/durabletask/entities/{entityName}": {
            "get": _operation(
                "List the entities of one name",
                {"200": {"description": "A page of entities", "content": _JSON_ANY}},
                [
                    _ENTITY_NAME,
                    _query("fetchState", _BOOL, "Include each entity's state. Default false."),
                    _query("top", {"type": "integer", "minimum": 1, "maximum": 1000}, "Page size."),
                ],
            )
        },
        "/durabletask/entities/{entityName}/{entityKey}": {
            "get": _operation(
                "An entity's state",
                {
                    "200": {"description": "The state", "content": _JSON_ANY},
                    "404": _error("No such entity"),
                },
                [_ENTITY_NAME, _ENTITY_KEY],
            ),
            "post": _operation(
                "Signal an entity's operation (the body is its input)",
                {
                    "202": {"description": "Accepted"},
                    "400": _error("Bad operation or input"),
                    "404": _error("No entity of that name is registered"),
                    "413": _error("Body too large"),
                },
                [
                    _ENTITY_NAME,
                    _ENTITY_KEY,
                    {
                        **_query("op", {"type": "string", "minLength": 1}, "The operation."),
                        "required": True,
                    },
                ],
                _JSON_BODY,
            ),
        },
        "/durabletask/hub": {
            "get": _operation(
                "The task hub at a glance: instances by status, queue and poison depths, "
                "recent failures, registered orchestrators",
                {"200": {"description": "The overview", "content": _JSON_ANY}},
                [],
                tag="Hub",
            )
        },
        "/durabletask/registry": {
            "get": _operation(
                "The orchestrators, activities and entities the app registers",
                {"200": {"description": "Names by kind", "content": _JSON_ANY}},
                [],
                tag="Hub",
            )
        },
        "/durabletask/poison": {
            "get": _operation(
                "The first 32 messages of each poison queue, with why each was moved there",
                {"200": {"description": "Poison queues", "content": _JSON_ANY}},
                [],
                tag="Hub",
            )
        },
        "/durabletask/poison/{queue}/{messageId}": {
            "get": _operation(
                "One poison message with its whole body",
                {
                    "200": {"description": "The message", "content": _JSON_ANY},
                    "404": _error("No such queue or message"),
                },
                [_POISON_QUEUE, _MESSAGE_ID],
                tag="Hub",
            ),
            "delete": _operation(
                "Discard one poison message",
                {
                    "200": {"description": "Discarded", "content": _JSON_ANY},
                    "404": _error("No such queue or message"),
                },
                [_POISON_QUEUE, _MESSAGE_ID],
                tag="Hub",
            ),
        },
        "/durabletask/poison/{queue}/{messageId}/requeue": {
            "post": _operation(
                "Put one poison message back on its queue",
                {
                    "200": {"description": "Requeued", "content": _JSON_ANY},
                    "404": _error("No such queue or message"),
                },
                [_POISON_QUEUE, _MESSAGE_ID],
                tag="Hub",
            )
        },
        "/v1.0/workflows/dapr/{workflowName}/start": {
            "post": _operation(
                "Start a workflow (Dapr)",
                {
                    "202": {"description": 'Started: {"instanceID": ...}'},
                    "409": _error("The instance exists and is running"),
                    "413": _error("Body too large"),
                },
                [
                    _path_param("workflowName", 128, "Workflow name"),
                    _query(
                        "instanceID",
                        {"type": "string", "maxLength": MAX_INSTANCE_ID_LENGTH},
                        "Instance id (default: generated).",
                    ),
                ],
                _JSON_BODY,
                tag="Dapr",
            )
        },
        "/v1.0/workflows/dapr/{instanceId}": {
            "get": _operation(
                "A workflow instance (Dapr)",
                {
                    "200": {"description": "instanceID, workflowName, runtimeStatus, properties"},
                    "404": _error("No such instance"),
                },
                [_INSTANCE_ID],
                tag="Dapr",
            )
        },
        "/v1.0/workflows/dapr/{instanceId}/raiseEvent/{eventName}": {
            "post": _operation(
                "Send an event to a workflow instance (Dapr)",
                {
                    "202": {"description": "Accepted"},
                    "404": _error("No such instance"),
                    "410": _error("The instance has finished"),
                    "413": _error("Body too large"),
                },
                [_INSTANCE_ID, _path_param("eventName", MAX_EVENT_NAME_LENGTH, "Event name")],
                _JSON_BODY,
                tag="Dapr",
            )
        },
        "/v1.0/workflows/dapr/{instanceId}/terminate": _dapr_steer("terminate", "410"),
        "/v1.0/workflows/dapr/{instanceId}/pause": _dapr_steer("pause", "410"),
        "/v1.0/workflows/dapr/{instanceId}/resume": _dapr_steer("resume", "410"),
        "/v1.0/workflows/dapr/{instanceId}/purge": _dapr_steer("purge", "412"),
    }
    paths.update(_link_paths(paths))
    paths.update(_dapr_versions(paths))
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Durable orchestration management API",
            "version": "1.0",
            "description": "Durable Functions' instance API and Dapr's workflow API over one "
            "task hub. Send a function key as the x-functions-key header or the code query "
            "parameter. The durabletask/links paths open one instance with its link code "
            "(code=), as the check-status payload of a start without a key gives it. The "
            "local host also serves the Durable Functions paths below "
            "/runtime/webhooks/durabletask/ (orchestrators/... as well), as DF's own "
            "extension does.",
        },
        "servers": [{"url": f"/{route_prefix}".rstrip("/") or "/"}],
        "security": [{"functionKeyHeader": []}, {"functionKeyQuery": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "functionKeyHeader": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
                "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code"},
                "instanceLinkCode": {"type": "apiKey", "in": "query", "name": "code"},
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "detail"],
                    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
                },
                "Status": {
                    "type": "object",
                    "required": [
                        "name",
                        "instanceId",
                        "runtimeStatus",
                        "createdTime",
                        "lastUpdatedTime",
                    ],
                    "properties": {
                        "name": {"type": "string"},
                        "instanceId": {"type": "string"},
                        "runtimeStatus": {"type": "string", "enum": _STATUSES},
                        "input": _ANY_JSON,
                        "customStatus": _ANY_JSON,
                        "output": _ANY_JSON,
                        "createdTime": {"type": "string"},
                        "lastUpdatedTime": {"type": "string"},
                        "historyEvents": {"type": "array", "items": {"type": "object"}},
                    },
                },
                "CheckStatus": {
                    "type": "object",
                    "required": [
                        "id",
                        "statusQueryGetUri",
                        "sendEventPostUri",
                        "terminatePostUri",
                        "purgeHistoryDeleteUri",
                    ],
                    "properties": {
                        name: {"type": "string"}
                        for name in (
                            "id",
                            "statusQueryGetUri",
                            "sendEventPostUri",
                            "terminatePostUri",
                            "rewindPostUri",
                            "purgeHistoryDeleteUri",
                            "restartPostUri",
                            "suspendPostUri",
                            "resumePostUri",
                        )
                    },
                },
            },
        },
    }
