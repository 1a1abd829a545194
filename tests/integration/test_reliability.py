"""Reliability: the design's rules under crashes, restarts, redeployments and outages.

- every fault point of the storage layer, raised in process (burst worker) and as a process
  exit (a host subprocess), during an orchestrator step, an activity and a timer firing;
- a short torture run (tests/chaos: hosts SIGKILLed, Azurite restarted), `make chaos` is the
  full one;
- a changed deployment, a graceful drain (SIGTERM) and a storage outage under load;
- minimal reproductions of the engine bugs these found, kept as regression tests (fixed).

Checks on every instance: final status and output, no duplicated history event, every
result applied once (tests/chaos/verify.py).
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from orchestration.client import DurableOrchestrationClient
from orchestration.core import DurableOrchestrationContext, OrchestrationRuntimeStatus
from orchestration.core.history import ExecutionStarted
from orchestration.functions.burst import BurstWorker
from orchestration.functions.engine import Engine
from orchestration.functions.orchestrator import OrchestratorWorker
from orchestration.functions.registry import Registry
from orchestration.functions.settings import EngineSettings
from orchestration.functions.triggers import sweep
from orchestration.host.queue_listener import QueueListener
from orchestration.host.storage import StorageAccount
from orchestration.storage.hub import TaskHub
from orchestration.storage.messages import ControlMessage
from tests.chaos.cluster import HostProc
from tests.chaos.torture import Config, Torture, print_figures
from tests.chaos.verify import history_problems
from tests.conftest import Storage

Context = DurableOrchestrationContext
POINTS = ("commit.before", "commit.after", "send.control", "send.activity")


# -- in-process app -----------------------------------------------------------------------
def chain(ctx: Context) -> Any:
    value = ctx.get_input()
    for _ in range(2):
        value = yield ctx.call_activity("add_one", value)
    return value


def fan(ctx: Context) -> Any:
    results = yield ctx.task_all([ctx.call_activity("add_one", i) for i in range(3)])
    return sum(results)


def timer_then_activity(ctx: Context) -> Any:
    yield ctx.create_timer(ctx.current_utc_datetime + timedelta(seconds=1))
    value = yield ctx.call_activity("add_one", ctx.get_input())
    return value


def wait_event(ctx: Context) -> Any:
    value = yield ctx.wait_for_external_event("Go")
    return value


def add_one(value: int) -> int:
    return value + 1


def make_registry() -> Registry:
    registry = Registry()
    for function in (chain, fan, timer_then_activity, wait_event):
        registry.add_orchestrator(function.__name__, function)
    registry.add_activity("add_one", add_one, "value")
    return registry


ClientFactory = Callable[[str], Awaitable[DurableOrchestrationClient]]


@pytest.fixture
async def client_factory(azurite: Storage) -> AsyncIterator[ClientFactory]:
    """Clients of task hubs named by the test (on the session Azurite), closed at its end."""
    made: list[TaskHub] = []

    async def make(name: str) -> DurableOrchestrationClient:
        hub = TaskHub.from_connection_string(azurite.connection_string, name)
        await hub.create_if_not_exists()
        made.append(hub)
        return DurableOrchestrationClient(hub)

    yield make
    for hub in made:
        await hub.close()


@pytest.fixture
async def engine_hub(azurite: Storage, hub: TaskHub) -> AsyncIterator[TaskHub]:
    """The same task hub through its own object: faults armed on it hit the engine's
    workers only, never the test's client."""
    instance = TaskHub.from_connection_string(azurite.connection_string, hub.names.hub)
    yield instance
    await instance.close()


def finished(client: DurableOrchestrationClient, instance_id: str) -> Callable[[], Any]:
    async def check() -> bool:
        status = await client.get_status(instance_id)
        return status is not None and status.runtime_status.is_terminal

    return check


# -- every crash point, raised in process --------------------------------------------------
# (orchestrator, input, expected output, local activities, direct results): the phase each
# scenario puts the fault points in.
SCENARIOS: dict[str, tuple[str, Any, Any, bool, bool]] = {
    # Orchestrator steps and activities, every hop through the queues.
    "queued-chain": ("chain", 5, 7, False, False),
    # Activities through the work-item queue, each result committed by the activity worker.
    "direct-fan": ("fan", None, 6, False, True),
    # Activities run by the orchestrating process itself (the default fast path).
    "local-chain": ("chain", 5, 7, True, True),
    # A durable timer firing, then an activity.
    "timer": ("timer_then_activity", 1, 2, False, False),
}


async def run_scenario(hub: TaskHub, client: DurableOrchestrationClient, scenario: str) -> Any:
    name, value, _, local, direct = SCENARIOS[scenario]
    instance_id = await client.start_new(name, None, value)
    worker = BurstWorker(
        hub,
        make_registry(),
        visibility_timeout=1,
        local_activities=local,
        direct_results=direct,
    )
    await worker.run_until(finished(client, instance_id), timeout=30)
    return await client.get_status(instance_id, show_history=True, show_history_output=True)


def matrix() -> list[Any]:
    return [
        pytest.param(scenario, point, id=f"{scenario}-{point}")
        for scenario in SCENARIOS
        for point in POINTS
    ]


@pytest.mark.parametrize(("scenario", "point"), matrix())
async def test_each_storage_call_failing_in_turn_loses_and_doubles_nothing(
    engine_hub: TaskHub, client: DurableOrchestrationClient, scenario: str, point: str
) -> None:
    """A clean run counts the engine's calls at `point`; then the n-th call fails, for
    every n, and the instance must still end as the clean run did."""
    hub = engine_hub
    expected = SCENARIOS[scenario][2]
    status = await run_scenario(hub, client, scenario)
    assert status.output == expected
    calls = hub.faults.hits.get(point, 0)
    if calls == 0:
        pytest.skip(f"{scenario} makes no call at {point}")
    reached = 0
    for n in range(1, calls + 1):
        hub.faults.arm(point, "raise", on_call=n)
        rule = hub.faults.rules[point]
        status = await run_scenario(hub, client, scenario)
        hub.faults.disarm()
        # Coalescing makes the count vary a little (3 results may commit in 2 steps): the
        # last n may not be reached in this run.
        reached += rule.calls >= n
        where = f"{scenario}: call {n} of {calls} at {point} raised"
        assert status.runtime_status is OrchestrationRuntimeStatus.Completed, where
        assert status.output == expected, where
        assert history_problems(status.history) == [], where
    assert reached >= 1, f"{scenario}: no fault at {point} was reached"


# -- engine bugs the torture run found (fixed in 3d801f5): their reproductions -----------------
async def test_an_event_processed_before_the_start_message_is_not_lost(
    hub: TaskHub, client: DurableOrchestrationClient
) -> None:
    """Two hosts: one handles an instance's external event before the other handles its
    start. The start must still run (it was once dropped as a duplicate, for good)."""
    registry = make_registry()
    instance_id = await client.start_new("wait_event")
    await client.raise_event(instance_id, "Go", 42)
    received = await hub.queues.receive(hub.names.control_queue, 32)
    assert len(received) == 2
    messages = []
    for raw in received:
        decoded = await hub.decode_message(base64.b64decode(raw.text))
        assert isinstance(decoded, ControlMessage)
        messages.append(decoded)
        await hub.queues.delete(hub.names.control_queue, raw.id, raw.pop_receipt)
    # Two hosts: the event's message is handled first, the start's a moment later.
    messages.sort(key=lambda m: isinstance(m.event, ExecutionStarted))
    worker = OrchestratorWorker(hub, registry)
    for message in messages:
        await worker.handle(message)
    # A repair sweep re-sends a Pending instance's start; it must be harmless.
    await sweep(hub, timedelta(seconds=0), datetime.now(UTC) + timedelta(seconds=1))
    burst = BurstWorker(hub, registry, visibility_timeout=1)
    await burst.run_until(finished(client, instance_id), timeout=10)
    status = await client.get_status(instance_id, show_history=True)
    assert status is not None
    assert status.runtime_status is OrchestrationRuntimeStatus.Completed, status.history
    assert status.output == 42


async def test_a_locally_fired_timer_whose_sends_fail_after_its_commit_still_completes(
    engine_hub: TaskHub, client: DurableOrchestrationClient
) -> None:
    """A near timer fires in the process that created it; when that step's sends fail after
    its commit, the work must not wait for the sweeper (the row's WakeAt, 30 s after due)."""
    hub = engine_hub
    instance_id = await client.start_new("timer_then_activity", None, 1)
    worker = OrchestratorWorker(hub, make_registry())  # activities go through the queue
    received = await hub.queues.receive(hub.names.control_queue, 32)
    assert len(received) == 1
    start = await hub.decode_message(base64.b64decode(received[0].text))
    assert isinstance(start, ControlMessage)
    await worker.handle(start)  # commits TimerCreated; the timer fires in this process
    await hub.queues.delete(hub.names.control_queue, received[0].id, received[0].pop_receipt)
    hub.faults.arm("send.activity", "raise", on_call=1)
    await asyncio.sleep(2.0)  # the local timer fires: TimerFired committed, the send fails
    assert worker.stats.local_timers == 1
    assert hub.faults.rules["send.activity"].calls == 1
    hub.faults.disarm()
    # No queued copy of the timer exists: the failed step's wake-up message must bring the
    # activity back (its worker re-sends the open work), long before the row's WakeAt.
    burst = BurstWorker(hub, make_registry(), visibility_timeout=1, local_activities=False)
    await burst.run_until(finished(client, instance_id), timeout=15)
    status = await client.get_status(instance_id)
    assert status is not None and status.output == 2


# -- the torture run, short form -------------------------------------------------------------
async def test_torture_short(tmp_path: Path) -> None:
    """2 hosts, 40 orchestrations, a host SIGKILLed every few seconds, Azurite restarted once:
    every instance ends as expected, no history event doubled, nothing stuck."""
    config = Config(
        hosts=2,
        instances=40,
        seed=11,
        kill_interval=(1.5, 3.0),
        max_kills=6,
        deadline=150.0,
        work_dir=tmp_path / "chaos",
        json_path=tmp_path / "chaos.json",
    )
    figures = await Torture(config).run()
    print_figures(figures)
    assert figures.kills >= 1
    assert figures.azurite_restarts == 1
    assert figures.stuck == 0, figures.stuck_ids
    assert figures.verdict["problems"] == []
    assert (
        figures.verdict["completed_as_expected"] == figures.instances + figures.sub_orchestrations
    )
    assert figures.ok


# -- host processes -------------------------------------------------------------------------
def chaos_host(
    connection: str,
    hub_name: str,
    folder: Path,
    name: str,
    env: dict[str, str] | None = None,
    *,
    workers: int = 1,
    wait: bool = True,
) -> HostProc:
    """A host of tests/apps/chaos_app on `hub_name` (its own process group, no Azurite)."""
    ledger = folder / "ledger"
    ledger.mkdir(parents=True, exist_ok=True)
    settings = {
        "CHAOS_HUB": hub_name,
        "CHAOS_LEDGER_DIR": str(ledger),
        "ORCHESTRATION_QUEUE_LEASE_SECONDS": "2",
        "AzureFunctionsWebHost__hostid": f"rel-{hub_name.lower()}"[:32],
        **(env or {}),
    }
    host = HostProc(name, connection, folder / f"{name}.log", settings, workers=workers)
    host.start()
    if wait:
        assert host.wait_ready(60), host.output()
    return host


@pytest.fixture
def hosts() -> Iterator[list[HostProc]]:
    """Hosts a test starts; all are stopped (and waited for) at its end."""
    started: list[HostProc] = []
    yield started
    for host in started:
        host.terminate(30)


async def wait_terminal(
    client: DurableOrchestrationClient, instance_ids: list[str], timeout: float
) -> dict[str, Any]:
    """Statuses (with history) once every instance is terminal; fails after `timeout` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    open_ids = list(instance_ids)
    while open_ids:
        statuses = [await client.get_status(i) for i in open_ids]
        open_ids = [
            i
            for i, s in zip(open_ids, statuses, strict=True)
            if not s or not s.runtime_status.is_terminal
        ]
        if not open_ids:
            break
        if loop.time() > deadline:
            pytest.fail(f"not finished after {timeout:.0f} s: {open_ids}")
        await asyncio.sleep(0.3)
    return {
        i: await client.get_status(i, show_history=True, show_history_output=True)
        for i in instance_ids
    }


# (orchestrator, input, expected output) of the chaos app, one per phase: orchestrator steps
# with activities run locally, activities through the work-item queue with results committed
# by the activity worker, a timer firing.
HOST_SCENARIOS = [
    ("chain", {"start": 10, "n": 3}, 13),
    ("fan", {"n": 10}, sum(i * i for i in range(10))),
    ("timer", {"seconds": 1}, "fired after 1s"),
    # sub-orchestrations: their starts and completions are control messages (send.control)
    ("parent", {"children": 2}, [1, 2]),
]


@pytest.mark.parametrize("point", POINTS)
async def test_a_host_process_exiting_at_each_fault_point_loses_and_doubles_nothing(
    azurite: Storage, client_factory: ClientFactory, tmp_path: Path, hosts: list[HostProc],
    point: str,
) -> None:  # fmt: skip
    """The host exits (os._exit) at the n-th call of `point`, n = 1, 2, 3, 4 in turn, while
    a chain, a fan-out, a timer and sub-orchestrations are in flight; then a clean host
    finishes the work."""
    hub_name = f"X{uuid.uuid4().hex[:12]}"
    client = await client_factory(hub_name)
    ids = [
        await client.start_new(name, f"{name}-{point}", value) for name, value, _ in HOST_SCENARIOS
    ]
    crashes = 0
    for n in range(1, 5):
        env = {"ORCHESTRATION_FAULTS": f"{point}=exit:{n}"}
        host = chaos_host(azurite.connection_string, hub_name, tmp_path, f"faulty-{n}", env)
        hosts.append(host)
        for _ in range(300):  # until it exits at the fault, or everything is done (30 s)
            if not host.running:
                break
            states = [await client.get_status(i) for i in ids]
            if all(s is not None and s.runtime_status.is_terminal for s in states):
                break
            await asyncio.sleep(0.1)
        if host.running:
            host.terminate(30)
            break
        assert host.process is not None and host.process.returncode == 86, host.output()
        crashes += 1
    assert crashes >= 1, f"no call at {point}"
    hosts.append(chaos_host(azurite.connection_string, hub_name, tmp_path, "clean"))
    statuses = await wait_terminal(client, ids, timeout=90)
    for (_, _, expected), instance_id in zip(HOST_SCENARIOS, ids, strict=True):
        status = statuses[instance_id]
        where = f"{instance_id} after {crashes} crash(es) at {point}"
        assert status.runtime_status is OrchestrationRuntimeStatus.Completed, where
        assert status.output == expected, where
        assert history_problems(status.history) == [], where


async def test_a_changed_deployment_fails_replaying_instances_loudly_and_spares_others(
    azurite: Storage, client_factory: ClientFactory, tmp_path: Path, hosts: list[HostProc]
) -> None:
    """Version A runs `versioned` and `stable` to their wait for an event; version B changes
    `versioned`'s first step. Under B, `versioned` instances fail with NonDeterminismError
    naming the step and both actions once they replay; `stable` ones complete."""
    hub_name = f"D{uuid.uuid4().hex[:12]}"
    client = await client_factory(hub_name)
    host_a = chaos_host(azurite.connection_string, hub_name, tmp_path, "version-a")
    hosts.append(host_a)
    changed = [await client.start_new("versioned", f"versioned-{i}") for i in range(3)]
    unchanged = [await client.start_new("stable", f"stable-{i}") for i in range(3)]

    async def waiting() -> bool:
        for instance_id in changed + unchanged:
            status = await client.get_status(instance_id, show_history=True)
            kinds = [e["EventType"] for e in (status.history or [])] if status else []
            if "TaskCompleted" not in kinds:
                return False
        return True

    for _ in range(300):
        if await waiting():
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail(f"instances did not reach their wait under version A:\n{host_a.output()}")
    assert host_a.terminate(30) == 0, host_a.output()

    hosts.append(
        chaos_host(
            azurite.connection_string, hub_name, tmp_path, "version-b", {"CHAOS_DEPLOYMENT": "B"}
        )
    )
    for instance_id in changed + unchanged:
        await client.raise_event(instance_id, "Go", {"by": "test"})
    statuses = await wait_terminal(client, changed + unchanged, timeout=60)
    for instance_id in changed:
        status = statuses[instance_id]
        assert status.runtime_status is OrchestrationRuntimeStatus.Failed, status.output
        message = str(status.output)
        assert message.startswith("NonDeterminismError"), message
        assert "add_one" in message and "square" in message, message
        assert history_problems(status.history) == []
    for instance_id in unchanged:
        status = statuses[instance_id]
        assert status.runtime_status is OrchestrationRuntimeStatus.Completed, status.output
        assert status.output == [2, {"by": "test"}]
        assert history_problems(status.history, {"Go": 1}) == []


async def test_sigterm_under_load_drains_and_loses_and_doubles_nothing(
    azurite: Storage, client_factory: ClientFactory, tmp_path: Path, hosts: list[HostProc]
) -> None:
    """A host (2 worker processes) gets SIGTERM while slow activities run: it exits cleanly
    within its grace period; a restarted host finishes every instance, each result once."""
    hub_name = f"G{uuid.uuid4().hex[:12]}"
    client = await client_factory(hub_name)
    # The default in-flight lease (10 minutes): a drain must not rely on messages coming back.
    lease = {"ORCHESTRATION_QUEUE_LEASE_SECONDS": "600"}
    host = chaos_host(azurite.connection_string, hub_name, tmp_path, "draining", lease, workers=2)
    hosts.append(host)
    ids = [
        # 10 s of activities per chain: well over the 5 s grace left after the first result
        await client.start_new("slow_chain", f"slow-{i}", {"n": 10, "ms": 1000})
        for i in range(12)
    ]
    ids += [await client.start_new("fan", f"fan-{i}", {"n": 12}) for i in range(4)]

    async def some_progress() -> bool:
        status = await client.get_status(ids[0], show_history=True)
        return status is not None and any(
            e["EventType"] == "TaskCompleted" for e in status.history or []
        )

    for _ in range(300):
        if await some_progress():
            break
        await asyncio.sleep(0.1)
    code = await asyncio.to_thread(host.terminate, 60)
    output = host.output()
    assert code == 0, output
    assert "Traceback" not in output, output
    unfinished = [
        i for i in ids if not (s := await client.get_status(i)) or not s.runtime_status.is_terminal
    ]
    assert unfinished, "the drain came too late to test anything"
    hosts.append(chaos_host(azurite.connection_string, hub_name, tmp_path, "after", lease))
    statuses = await wait_terminal(client, ids, timeout=120)
    for instance_id in ids:
        status = statuses[instance_id]
        expected = 10 if instance_id.startswith("slow") else sum(i * i for i in range(12))
        assert status.runtime_status is OrchestrationRuntimeStatus.Completed, instance_id
        assert status.output == expected, instance_id
        assert history_problems(status.history) == [], instance_id


async def test_a_20_second_storage_outage_under_load_loses_and_doubles_nothing(
    tmp_path: Path,
) -> None:
    """Two hosts under load; Azurite stopped for 20 s (same ports and data after): no host
    exits, the hosts log the outage, and every instance ends as expected, nothing doubled."""
    config = Config(
        hosts=2,
        instances=30,
        seed=5,
        max_kills=0,
        azurite_restart_after=0.2,
        azurite_down_for=20.0,
        deadline=240.0,
        work_dir=tmp_path / "outage",
        keep_work_dir=True,
        events_after_start=True,
    )
    torture = Torture(config)
    figures = await torture.run()
    print_figures(figures)
    assert figures.azurite_restarts == 1 and figures.azurite_down_seconds >= 20
    logs = "".join(h.log_path.read_text(errors="replace") for h in torture.hosts)
    assert figures.host_exits_unexpected == 0, logs[-5000:]
    assert "storage unavailable" in logs
    assert figures.stuck == 0, figures.stuck_ids
    assert figures.verdict["problems"] == []
    assert figures.ok


async def test_concurrent_first_invocations_share_one_engine_runtime(
    azurite: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Concurrent first invocations in one process once each built a task hub (and leaked
    all but one: 'Unclosed client session' errors at every host start)."""
    monkeypatch.setenv("RELIABILITY_STORAGE", azurite.connection_string)
    settings = EngineSettings(
        hub_name=f"E{uuid.uuid4().hex[:12]}", connection_name="RELIABILITY_STORAGE"
    )
    engine = Engine(make_registry(), settings)
    runtimes = await asyncio.gather(*(engine.runtime() for _ in range(4)))
    hubs = {id(runtime.hub): runtime.hub for runtime in runtimes}
    try:
        assert len(hubs) == 1, f"{len(hubs)} task hubs built for one engine"
    finally:
        for hub in hubs.values():
            await hub.close()


# -- host: an in-flight lease renewal cut short ------------------------------------------------
async def test_a_message_is_deleted_even_when_its_work_ends_during_a_lease_renewal(
    azurite: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORCHESTRATION_QUEUE_LEASE_SECONDS", "2")  # renew every 1 s
    account = StorageAccount(azurite.connection_string)
    queue = f"renew-{uuid.uuid4().hex[:10]}"
    renewed = asyncio.Event()

    class SlowAnswers:
        """The real account, but a renewal's answer arrives 0.5 s after Azurite applied it."""

        async def set_visibility(self, *args: Any) -> str:
            receipt = await account.set_visibility(*args)
            renewed.set()
            await asyncio.sleep(0.5)
            return receipt

    try:
        await account.ensure_queue(queue)
        await account.send(queue, "work")
        [raw] = await account.receive(queue, 1, 2)
        listener = QueueListener.__new__(QueueListener)
        listener.queue = queue
        listener.account = SlowAnswers()  # type: ignore[assignment]
        stop = asyncio.Event()
        renewal = asyncio.create_task(listener._keep_hidden(raw, stop))
        await asyncio.wait_for(renewed.wait(), 10)
        # The function finishes now, while the renewal's answer is on its way.
        receipt = await QueueListener._stop_renewal(renewal, stop)
        await account.delete(queue, raw.id, receipt)
        await asyncio.sleep(2.5)  # past the lease: a message not deleted would be back
        assert await account.receive(queue, 1, 1) == []
    finally:
        await account.close()
