"""The orchestrators of the versioning test apps, as two releases of one app.

`register(app, release=2)` is the second release: `renamed` calls a renamed activity where
the first called another (a change that breaks in-flight instances), while `patched` makes
the same change behind `context.is_patched` (a change that does not).
"""

import json

import azure.functions as func

import orchestration as df


def register(app: df.DFApp, release: int = 1) -> None:
    @app.route(route="start/{name}", methods=["POST"])
    @app.durable_client_input(client_name="client")
    async def start(req: func.HttpRequest, client):
        body = req.get_body()
        version = req.params.get("version")
        instance_id = await client.start_new(
            req.route_params["name"],
            req.params.get("id"),
            json.loads(body) if body else None,
            version=version,
        )
        return client.create_check_status_response(req, instance_id)

    @app.orchestration_trigger(context_name="context")
    def own_version(context: df.DurableOrchestrationContext):
        return {"version": context.version, "release": release}

    @app.orchestration_trigger(context_name="context")
    def parent(context: df.DurableOrchestrationContext):
        plain = yield context.call_sub_orchestrator("own_version")
        pinned = yield context.call_sub_orchestrator("own_version", None, None, "0.7")
        retried = yield context.call_sub_orchestrator_with_retry(
            "own_version", df.RetryOptions(100, 2), version="0.9"
        )
        return {
            "own": context.version,
            "children": [plain["version"], pinned["version"], retried["version"]],
        }

    @app.orchestration_trigger(context_name="context")
    def renamed(context: df.DurableOrchestrationContext):
        first = "prepare" if release == 1 else "prepare_v2"
        yield context.call_activity(first, "x")
        yield context.wait_for_external_event("go")
        return (yield context.call_activity("finish", "x"))

    @app.orchestration_trigger(context_name="context")
    def patched(context: df.DurableOrchestrationContext):
        if release > 1 and context.is_patched("prepare-v2"):
            yield context.call_activity("prepare_v2", "x")
        else:
            yield context.call_activity("prepare", "x")
        yield context.wait_for_external_event("go")
        return (yield context.call_activity("finish", "x"))

    @app.activity_trigger(input_name="value")
    def prepare(value: str) -> str:
        return f"prepared {value}"

    @app.activity_trigger(input_name="value")
    def prepare_v2(value: str) -> str:
        return f"prepared {value} (v2)"

    @app.activity_trigger(input_name="value")
    def finish(value: str) -> str:
        return f"finished {value} on release {release}"
