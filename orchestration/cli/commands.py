"""The CLI's commands on a task hub, straight against storage (no host needed).

Each command is `async def NAME(args, hub, client, out) -> int`: it writes human-readable text,
or with `--json` one JSON document, to `out` and returns the exit code. Errors are raised as
`CliError` (or the client's own errors) and reported by `run` as one line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from orchestration.azure.errors import ResourceNotFound, StorageError
from orchestration.cli import render
from orchestration.cli.config import CliError, resolve_target
from orchestration.client import (
    DurableOrchestrationClient,
    DurableOrchestrationStatus,
    EntityMetadata,
    InstanceNotFoundError,
    InstanceStateError,
)
from orchestration.core import serialization
from orchestration.core.entities import EntityId, InvalidEntityIdError
from orchestration.core.status import OrchestrationRuntimeStatus
from orchestration.functions.management.instances import restart_instance
from orchestration.functions.management.validation import (
    BadRequest,
    InstanceQuery,
    parse_statuses,
)
from orchestration.storage import scans
from orchestration.storage.hub import ConcurrencyError, InstanceExistsError, TaskHub
from orchestration.storage.names import InvalidNameError

Command = Callable[
    [argparse.Namespace, TaskHub, DurableOrchestrationClient, TextIO], Awaitable[int]
]
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def emit(out: TextIO, args: argparse.Namespace, document: Any, text: str) -> None:
    if args.json:
        out.write(json.dumps(document, indent=2, default=str) + "\n")
    else:
        out.write(text.rstrip("\n") + "\n")


def read_json_arg(value: str | None, what: str) -> Any:
    """A JSON value given inline, or as @path to a file (@- for stdin)."""
    if value is None:
        return None
    text = value
    if value.startswith("@"):
        source = value[1:]
        try:
            text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
        except OSError as failure:
            raise CliError(f"cannot read {what} from {source}: {failure.strerror}") from None
    try:
        value = serialization.loads(text)
    except ValueError as failure:
        raise CliError(f"{what} is not valid JSON: {failure}") from None
    return None if value is None and text.strip() == "" else value


def parse_time(value: str | None, option: str) -> datetime | None:
    """An ISO 8601 time, or a time that far back: 30s, 15m, 2h, 7d, 1w."""
    if value is None:
        return None
    match = _RELATIVE.match(value.strip())
    if match:
        amount = timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
        return datetime.now(UTC) - amount
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise CliError(
            f"{option} takes an ISO 8601 time (2024-05-01T12:00:00Z) or an age such as 30m, "
            f"2h or 7d; got {value!r}"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def statuses_of(values: list[str] | None) -> list[OrchestrationRuntimeStatus]:
    try:
        return parse_statuses(values or [], "--status")
    except BadRequest as failure:
        raise CliError(failure.detail) from None


async def _require(client: DurableOrchestrationClient, instance_id: str) -> Any:
    status = await client.get_status(instance_id, show_input=True)
    if status is None:
        raise CliError(f"no instance with id {instance_id!r} in this hub")
    return status


# -- commands -----------------------------------------------------------------------------------


async def start(
    args: argparse.Namespace, hub: TaskHub, client: DurableOrchestrationClient, out: TextIO
) -> int:
    payload = read_json_arg(args.input, "--input")
    instance_id = await client.start_new(args.name, args.id, payload, args.version)
    if not args.wait:
        emit(
            out,
            args,
            {"instanceId": instance_id, "name": args.name},
            f"Started {args.name} as {instance_id}",
        )
        return 0
    if not args.json:
        out.write(f"Started {args.name} as {instance_id}; waiting (Ctrl-C stops waiting)\n")
        out.flush()
    status = await wait(client, instance_id, args.timeout, out, quiet=args.json)
    if status is None:
        raise CliError(f"instance {instance_id!r} disappeared while waiting")
    emit(out, args, status.to_json(), render.summary(status))
    if not status.runtime_status.is_terminal:
        raise CliError(
            f"instance {instance_id} is still {status.runtime_status.value} after "
            f"{args.timeout:g}s (is a host running this app?)",
            code=3,
        )
    return 0 if status.runtime_status is OrchestrationRuntimeStatus.Completed else 4


async def wait(
    client: DurableOrchestrationClient,
    instance_id: str,
    timeout: float,
    out: TextIO,
    *,
    quiet: bool = False,
    interval: float = 0.25,
) -> DurableOrchestrationStatus | None:
    """Poll until the instance finishes or `timeout` passes, printing each change of status,
    custom status or history length as a progress line."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    last: tuple[Any, ...] | None = None
    updated: datetime | None = None
    history: list[dict[str, Any]] = []
    while True:
        status = await client.get_status(instance_id, show_input=True)
        if status is None:
            return None
        if status.last_updated_time != updated and not quiet:
            # The history is read again only when the instance took a step.
            detailed = await client.get_status(instance_id, show_history=True)
            history = (detailed.history if detailed else None) or []
            updated = status.last_updated_time
        steps = len(history)
        seen = (status.runtime_status, json.dumps(status.custom_status, default=str), steps)
        if seen != last and not quiet:
            latest = next(
                (e for e in reversed(history) if e.get("EventType") != "OrchestratorStarted"), None
            )
            step = ""
            if latest is not None:
                step = f"  last: {latest.get('EventType')} {latest.get('Name') or ''}".rstrip()
            custom = ""
            if status.custom_status is not None:
                custom = f"  custom status: {render.short(status.custom_status)}"
            out.write(
                f"  {render.duration(loop.time() - began):>7}  {status.runtime_status.value:<10}"
                f" {steps} history events{step}{custom}\n"
            )
            out.flush()
            last = seen
        if status.runtime_status.is_terminal or loop.time() - began >= timeout:
            return status
        await asyncio.sleep(interval)


async def status(
    args: argparse.Namespace, hub: TaskHub, client: DurableOrchestrationClient, out: TextIO
) -> int:
    found = await client.get_status(args.id, show_history=args.history, show_input=True)
    if found is None:
        raise CliError(f"no instance with id {args.id!r} in this hub")
    text = render.summary(found)
    if found.runtime_status is OrchestrationRuntimeStatus.Failed and found.failure:
        trace = found.failure.get("stackTrace")
        if trace:
            text += "\nFailure:\n  " + str(trace).strip().replace("\n", "\n  ")
    if args.history:
        text += "\n\n" + render.timeline(found.history or [])
    emit(out, args, found.to_json(), text)
    return 0


async def list_(
    args: argparse.Namespace, hub: TaskHub, client: DurableOrchestrationClient, out: TextIO
) -> int:
    query = InstanceQuery(
        created_from=parse_time(args.since, "--since"),
        created_to=parse_time(args.until, "--until"),
        statuses=tuple(statuses_of(args.status)),
        prefix=args.prefix or None,
    )
    found: list[DurableOrchestrationStatus] = []
    try:
        async for state in hub.iterate_states(query.filter()):
            found.append(await client.status_of(state, show_input=False))
            if len(found) >= args.limit:
                break
    except ResourceNotFound:
        raise CliError(f"task hub {hub.names.hub!r} does not exist in this storage") from None
    found.sort(key=lambda s: s.created_time, reverse=True)
    rows = [
        [
            s.instance_id,
            s.name,
            s.runtime_status.value,
            render.when(s.created_time),
            render.when(s.last_updated_time),
        ]
        for s in found
    ]
    text = render.table(["INSTANCE ID", "NAME", "STATUS", "CREATED", "UPDATED"], rows)
    more = f"\n(first {args.limit} shown; use --limit)" if len(found) >= args.limit else ""
    emit(out, args, [s.to_json() for s in found], f"{text}\n{len(found)} instance(s){more}")
    return 0


async def raise_event(
    args: argparse.Namespace, hub: TaskHub, client: DurableOrchestrationClient, out: TextIO
) -> int:
    data = read_json_arg(args.data, "--data")
    await client.raise_event(args.id, args.event, data)
    emit(
        out,
        args,
        {"instanceId": args.id, "event": args.event, "sent": True},
        f"Sent {args.event} to {args.id}",
    )
    return 0


def _steering(verb: str, past: str) -> Command:
    async def run(
        args: argparse.Namespace, hub: TaskHub, client: DurableOrchestrationClient, out: TextIO
    ) -> int:
        await _require(client, args.id)
        await getattr(client, verb)(args.id, args.reason)
        emit(
            out,
            args,
            {"instanceId": args.id, "operation": verb, "accepted": True},
            f"{past} {args.id}",
        )
        return 0

    run.__name__ = verb
    return run


terminate = _steering("terminate", "Terminating")
suspend = _steering("suspend", "Suspending")
resume = _steering("resume", "Resuming")
rewind = _steering("rewind", "Rewinding")


async def restart(
    args: argparse.Namespace, hub: TaskHub, client: DurableOrchestrationClient, out: TextIO
) -> int:
    new_id = await restart_instance(client, args.id, not args.same_id)
    emit(
        out,
        args,
        {"instanceId": new_id, "restartedFrom": args.id},
        f"Restarted {args.id} as {new_id}",
    )
    return 0


async def purge(
    args: argparse.Namespace, hub: TaskHub, client: DurableOrchestrationClient, out: TextIO
) -> int:
    if args.ids:
        if args.since or args.until or args.status:
            raise CliError("give instance ids or filters (--since/--until/--status), not both")
        deleted = 0
        for instance_id in args.ids:
            found = await _require(client, instance_id)
            if not found.runtime_status.is_terminal and not args.force:
                raise CliError(
                    f"instance {instance_id} is {found.runtime_status.value}; terminate it "
                    f"first (or pass --force)"
                )
            deleted += (await client.purge_instance_history(instance_id)).instances_deleted
    else:
        if not (args.since or args.until or args.status):
            raise CliError("purge needs instance ids or a filter: --since, --until, --status")
        chosen = statuses_of(args.status) or [
            s for s in OrchestrationRuntimeStatus if s.is_terminal
        ]
        running = [s.value for s in chosen if not s.is_terminal]
        if running:
            raise CliError(f"only finished instances can be purged, not {', '.join(running)}")
        result = await client.purge_instance_history_by(
            parse_time(args.since, "--since"), parse_time(args.until, "--until"), chosen
        )
        deleted = result.instances_deleted
    emit(out, args, {"instancesDeleted": deleted}, f"Purged {deleted} instance(s)")
    return 0


async def hub_info(
    args: argparse.Namespace, hub: TaskHub, client: DurableOrchestrationClient, out: TextIO
) -> int:
    names = hub.names
    depths = await hub.queue_depths()
    try:
        counts = await scans.count_by_status(hub)
    except ResourceNotFound:
        raise CliError(f"task hub {names.hub!r} does not exist in this storage account") from None
    document = {
        "hub": names.hub,
        "storage": hub.account.name,
        "queues": depths,
        "instances": dict(counts),
        "totalInstances": sum(counts.values()),
        "tables": [names.instances_table, names.timers_table],
        "payloadContainer": names.payload_container,
    }
    queue_rows = [[q, "-" if d is None else d] for q, d in depths.items()]
    status_rows = [[s, counts[s]] for s in sorted(counts)] or [["(none)", 0]]
    text = (
        f"Task hub {names.hub} on {hub.account.name}\n\n"
        + render.table(["QUEUE", "MESSAGES"], queue_rows)
        + "\n\n"
        + render.table(["STATUS", "INSTANCES"], status_rows)
        + f"\n\n{sum(counts.values())} instance(s)"
    )
    emit(out, args, document, text)
    return 0


def _entity(args: argparse.Namespace) -> EntityId:
    try:
        return EntityId(args.name, args.key)
    except InvalidEntityIdError as failure:
        raise CliError(str(failure)) from None


async def entity(
    args: argparse.Namespace, hub: TaskHub, client: DurableOrchestrationClient, out: TextIO
) -> int:
    command = args.entity_command
    if command == "get":
        target = _entity(args)
        response = await client.read_entity_state(target)
        if not response.entity_exists:
            raise CliError(f"no entity {str(target)!r} in this hub")
        text = json.dumps(response.entity_state, indent=2)
        emit(out, args, {"id": str(target), "state": response.entity_state}, text)
        return 0
    if command == "signal":
        target = _entity(args)
        value = read_json_arg(args.input, "--input")
        await hub.create_if_not_exists()
        await client.signal_entity(target, args.operation, value)
        document = {"id": str(target), "operation": args.operation, "sent": True}
        emit(out, args, document, f"Signalled {args.operation} to {target}")
        return 0
    found: list[EntityMetadata] = []
    token = None
    try:
        while len(found) < args.limit:
            page, token = await client.list_entities(
                args.name, min(1000, args.limit), token, fetch_state=args.state
            )
            found += page
            if token is None:
                break
    except ResourceNotFound:
        raise CliError(f"task hub {hub.names.hub!r} does not exist in this storage") from None
    found = found[: args.limit]
    headers = ["ENTITY", "UPDATED", "WAITING"] + (["STATE"] if args.state else [])
    rows = [
        [str(m.entity_id), render.when(m.last_modified_time), m.backlog]
        + ([json.dumps(m.state)[:60]] if args.state else [])
        for m in found
    ]
    text = f"{render.table(headers, rows)}\n{len(found)} entit{'y' if len(found) == 1 else 'ies'}"
    emit(out, args, [m.to_json() for m in found], text)
    return 0


COMMANDS: dict[str, Command] = {
    "start": start,
    "status": status,
    "list": list_,
    "raise-event": raise_event,
    "terminate": terminate,
    "suspend": suspend,
    "resume": resume,
    "rewind": rewind,
    "restart": restart,
    "purge": purge,
    "hub": hub_info,
    "entity": entity,
}


async def _execute(args: argparse.Namespace, out: TextIO) -> int:
    target = resolve_target(args.app_dir, args.connection, args.hub)
    hub = TaskHub.from_connection_string(target.connection_string, target.hub_name)
    try:
        if args.command == "start":
            await hub.create_if_not_exists()
        client = DurableOrchestrationClient(
            hub, default_version=target.settings.versioning.default_version
        )
        return await COMMANDS[args.command](args, hub, client, out)
    finally:
        await hub.close()


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run one management command; errors become one line on stderr and a non-zero code."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        return asyncio.run(_execute(args, out))
    except CliError as failure:
        message, code = str(failure), failure.code
    except (InvalidNameError, InstanceStateError, InstanceExistsError) as failure:
        message, code = str(failure), 1
    except InstanceNotFoundError as failure:
        message, code = str(failure), 1
    except ConcurrencyError:
        message, code = "the instance took a step meanwhile; run the command again", 1
    except StorageError as failure:
        if failure.status == 0:
            message = f"cannot reach storage ({failure.operation}): {failure.message}"
        else:
            message = f"storage refused {failure.operation}: {failure.status} {failure}"
        code = 1
    except OSError as failure:
        message, code = f"cannot reach storage: {failure}", 1
    except KeyboardInterrupt:
        message, code = "interrupted", 130
    err.write(f"error: {' '.join(message.split())}\n")
    return code
