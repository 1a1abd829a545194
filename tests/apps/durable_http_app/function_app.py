"""A Durable Functions app that calls HTTP APIs from its orchestrators (`call_http`), as
users write it for azure-functions-durable; only the import line differs."""

import json

import azure.functions as func

import orchestration as df

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="orchestrators/{functionName}")
@app.durable_client_input(client_name="client")
async def http_start(req: func.HttpRequest, client):
    body = req.get_body()
    payload = json.loads(body) if body else None
    instance_id = await client.start_new(req.route_params["functionName"], client_input=payload)
    return client.create_check_status_response(req, instance_id)


@app.orchestration_trigger(context_name="context")
def fetch(context: df.DurableOrchestrationContext):
    """Input: {"method", "url", "content"?, "headers"?, "raw"?}; output: the answer."""
    call = context.get_input()
    response = yield context.call_http(
        call["method"],
        call["url"],
        content=call.get("content"),
        headers=call.get("headers"),
        is_raw_str=call.get("raw", False),
    )
    return {
        "status_code": response.status_code,
        "df_status_code": response["statusCode"],
        "headers": response.headers,
        "content": response.content,
        "is_response": isinstance(response, df.DurableHttpResponse),
    }


@app.orchestration_trigger(context_name="context")
def fetch_or_report(context: df.DurableOrchestrationContext):
    """As `fetch`, but reports a failed call instead of failing."""
    call = context.get_input()
    try:
        response = yield context.call_http(call["method"], call["url"])
    except df.TaskFailedError as error:
        return {"failed": str(error), "error_type": error.failure.error_type}
    return {"status_code": response.status_code, "content": response.content}


@app.orchestration_trigger(context_name="context")
def fetch_with_identity(context: df.DurableOrchestrationContext):
    source = df.ManagedIdentityTokenSource("https://management.core.windows.net/")
    try:
        yield context.call_http("GET", context.get_input(), token_source=source)
    except df.TaskFailedError as error:
        return {"failed": str(error)}
    return {"failed": None}


# A credential the app holds in code or settings, not in the orchestration's input.
SECRET = "Bearer app-secret-token"


@app.orchestration_trigger(context_name="context")
def fetch_with_secret(context: df.DurableOrchestrationContext):
    call = context.get_input()
    headers = {"Authorization": SECRET, "X-Marker": call["marker"]}
    response = yield context.call_http("POST", call["url"], call["content"], headers)
    return {"status_code": response.status_code, "content": response.content}
