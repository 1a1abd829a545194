"""The torture run: host processes killed at random, Azurite restarted, the rules checked.

    python -m tests.chaos [--hosts 3] [--instances 500] [--json chaos-report.json] ...

N host processes of tests/apps/chaos_app share one Azurite that persists to disk. The harness
starts M orchestrations (chains, fan-outs, timers, external events, sub-orchestrations,
retries, and orchestrations adding to a few shared `counter` entities by signals and calls),
raises their external events, SIGKILLs a random host every few seconds and
restarts it, and stops and restarts Azurite once (same ports, same data). When every instance
has finished, or the deadline has passed, it waits (still killing hosts) until the counters
hold what was added to them, signals being one-way, or `counter_settle` seconds have passed;
it stops the hosts and checks every instance: its final status and output, no duplicated
history event, every result applied once, every activity run, every counter exact (no add
lost or doubled; if one is, the requests that were, from the entity's batch rows). The
figures go to stdout and to a JSON file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import shutil
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from orchestration.azure import OutcomeUnknown
from orchestration.client import DurableOrchestrationClient
from orchestration.core.entities import EntityId
from orchestration.storage.entities import EntityStore, request_key
from orchestration.storage.hub import InstanceExistsError, TaskHub
from tests.chaos.cluster import HostProc, Storage
from tests.chaos.verify import (
    ENTITY_OPERATION,
    Verdict,
    check_counters,
    check_instance,
    check_ledger,
    counter_exact,
    read_ledger,
)
from tests.chaos.workload import (
    ENTITY_ORCHESTRATOR,
    Spec,
    counter_keys,
    counter_totals,
    make_workload,
)

log = logging.getLogger("chaos")


@dataclass
class Config:
    hosts: int = 3
    workers: int = 1
    instances: int = 500
    seed: int = 7
    kill_interval: tuple[float, float] = (3.0, 6.0)
    max_kills: int | None = None
    # Azurite is stopped once, when this fraction of the instances has finished.
    azurite_restart_after: float | None = 0.3
    azurite_down_for: float = 2.0
    # The whole run (start to the last instance finished) must end within this.
    deadline: float = 900.0
    start_batch: int = 25
    start_pause: float = 0.5
    lease_seconds: int = 4
    # Raise an external event only once its instance has started (left Pending). Off, an
    # event may reach an instance before its start does (see the engine bug reproduced by
    # test_an_event_processed_before_the_start_message_is_not_lost).
    events_after_start: bool = False
    # Once every instance has finished, how long the counters may take to reach their
    # expected values (a signal is one-way: the last ones may still be on their way).
    counter_settle: float = 60.0
    work_dir: Path | None = None
    keep_work_dir: bool = False
    json_path: Path | None = None


@dataclass
class Figures:
    hub: str = ""
    hosts: int = 0
    workers_per_host: int = 0
    instances: int = 0
    sub_orchestrations: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    seconds_to_finish: float = 0.0
    seconds_total: float = 0.0
    finished: int = 0
    stuck: int = 0
    stuck_ids: list[str] = field(default_factory=list)
    kills: int = 0
    host_restarts: int = 0
    host_exits_unexpected: int = 0
    azurite_restarts: int = 0
    azurite_down_seconds: float = 0.0
    ambiguous_starts: int = 0
    events_raised: int = 0
    event_raise_retries: int = 0
    repairs: int = 0
    repaired_ids: list[str] = field(default_factory=list)
    resend_log_lines: int = 0
    tracebacks_in_host_logs: int = 0
    poison_messages: dict[str, int] = field(default_factory=dict)
    entity_orchestrations: int = 0
    # Seconds from the last instance finished to every counter as expected (None: never).
    counters_settled_after: float | None = None
    verdict: dict[str, Any] = field(default_factory=dict)
    ok: bool = False


class Torture:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.figures = Figures(hosts=config.hosts, workers_per_host=config.workers)
        self.storage_up = asyncio.Event()
        self.finished_fraction = 0.0
        self.raised: dict[str, Counter[str]] = {}
        self.uncertain: dict[str, Counter[str]] = {}
        self.hosts: list[HostProc] = []
        self.stop_chaos = asyncio.Event()
        self.killing = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()
        self.counter_keys: list[str] = []

    def _spawn(self, coroutine: Any) -> None:
        """Run in the background, keeping a reference (the loop holds only a weak one)."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- parts ----------------------------------------------------------------------------
    async def _retry(self, what: str, call: Any, deadline: float) -> Any:
        """Run `call()` until it succeeds while storage is up; give up at `deadline`."""
        attempt = 0
        while True:
            await asyncio.wait_for(self.storage_up.wait(), max(deadline - time.monotonic(), 0.1))
            try:
                return await call()
            except Exception as error:
                attempt += 1
                if time.monotonic() > deadline:
                    raise
                log.info("%s failed (%s); retrying", what, type(error).__name__)
                await asyncio.sleep(min(0.2 * attempt, 2.0))

    async def _start_all(self, client: DurableOrchestrationClient, specs: list[Spec]) -> None:
        deadline = time.monotonic() + self.config.deadline
        size = self.config.start_batch
        for index in range(0, len(specs), size):
            batch = specs[index : index + size]
            await asyncio.gather(*(self._start(client, spec, deadline) for spec in batch))
            for spec in batch:
                for delay, name, data in spec.events:
                    self._spawn(self._raise(client, spec.instance_id, delay, name, data, deadline))
            await asyncio.sleep(self.config.start_pause)

    async def _start(self, client: DurableOrchestrationClient, spec: Spec, deadline: float) -> None:
        attempts = 0

        async def start() -> None:
            nonlocal attempts
            attempts += 1
            try:
                await client.start_new(spec.name, spec.instance_id, spec.input)
            except InstanceExistsError:
                if attempts == 1:
                    raise
                # An earlier attempt was applied although its answer was lost.
                self.figures.ambiguous_starts += 1

        await self._retry(f"start {spec.instance_id}", start, deadline)

    async def _raise(
        self,
        client: DurableOrchestrationClient,
        instance_id: str,
        delay: float,
        name: str,
        data: Any,
        deadline: float,
    ) -> None:
        await asyncio.sleep(delay)
        attempts = 0
        if self.config.events_after_start:

            async def started() -> bool:
                status = await client.get_status(instance_id)
                return status is not None and status.runtime_status.value != "Pending"

            while time.monotonic() < deadline:
                with contextlib.suppress(Exception):
                    if await started():
                        break
                await asyncio.sleep(0.5)

        async def send() -> None:
            nonlocal attempts
            attempts += 1
            try:
                await client.raise_event(instance_id, name, data)
            except OutcomeUnknown:
                # It may have been sent: a retry may then deliver it twice (a client's
                # retry, not the engine's doing), which the checks allow for.
                self.uncertain.setdefault(instance_id, Counter())[name] += 1
                raise

        try:
            await self._retry(f"raise {name} to {instance_id}", send, deadline)
        except Exception:
            log.exception("could not raise %s to %s", name, instance_id)
            return
        self.raised.setdefault(instance_id, Counter())[name] += 1
        self.figures.events_raised += 1
        self.figures.event_raise_retries += attempts - 1

    async def _chaos(self) -> None:
        """Kill a random host every few seconds (SIGKILL), restart it; restart hosts that
        died on their own."""
        low, high = self.config.kill_interval
        while not self.stop_chaos.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_chaos.wait(), self.rng.uniform(low, high))
            if self.stop_chaos.is_set():
                return
            async with self.killing:
                for host in self.hosts:
                    if not host.running:
                        self.figures.host_exits_unexpected += 1
                        log.warning("%s exited by itself; restarting it", host.name)
                        host.start()
                        self.figures.host_restarts += 1
                limit = self.config.max_kills
                if limit is not None and self.figures.kills >= limit:
                    continue
                if not self.storage_up.is_set():
                    continue
                victim = self.rng.choice(self.hosts)
                await asyncio.to_thread(victim.kill)
                self.figures.kills += 1
                log.info("SIGKILLed %s (kill %d)", victim.name, self.figures.kills)
                victim.start()
                self.figures.host_restarts += 1

    async def _restart_storage(self, storage: Storage) -> None:
        async with self.killing:
            self.storage_up.clear()
            started = time.monotonic()
            log.info("stopping Azurite for %.0f s", self.config.azurite_down_for)
            await storage.restart(self.config.azurite_down_for)
            self.figures.azurite_down_seconds = round(time.monotonic() - started, 1)
            self.figures.azurite_restarts += 1
            self.storage_up.set()
            log.info("Azurite is back")

    async def _wait_finished(
        self, hub: TaskHub, specs: list[Spec], storage: Storage, deadline: float
    ) -> set[str]:
        """Poll the instance table until every instance is terminal; the ids still open."""
        wanted = {s.instance_id for s in specs} | {c for s in specs for c, _ in s.children}
        restarted = self.config.azurite_restart_after is None
        open_ids = set(wanted)
        next_report = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                await asyncio.wait_for(self.storage_up.wait(), 60)
                terminal = {
                    state.instance_id
                    async for state in hub.iterate_states()
                    if state.status.is_terminal
                }
            except Exception as error:
                log.info("polling failed (%s)", type(error).__name__)
                await asyncio.sleep(1)
                continue
            open_ids = wanted - terminal
            self.finished_fraction = 1 - len(open_ids) / len(wanted)
            if time.monotonic() > next_report:
                next_report = time.monotonic() + 10
                log.info("finished %d of %d", len(wanted) - len(open_ids), len(wanted))
            if not open_ids:
                return set()
            if not restarted and self.finished_fraction >= (self.config.azurite_restart_after or 0):
                restarted = True
                self._spawn(self._restart_storage(storage))
            await asyncio.sleep(1.0)
        return open_ids

    # -- the run --------------------------------------------------------------------------
    async def run(self) -> Figures:
        config = self.config
        figures = self.figures
        work = config.work_dir or Path(tempfile.mkdtemp(prefix="chaos-"))
        work.mkdir(parents=True, exist_ok=True)
        ledger = work / "ledger"
        ledger.mkdir(exist_ok=True)
        hub_name = f"Chaos{uuid.uuid4().hex[:10]}"
        figures.hub = hub_name
        storage = Storage(work / "azurite")
        connection = await storage.start()
        self.storage_up.set()
        hub = TaskHub.from_connection_string(connection, hub_name)
        client = DurableOrchestrationClient(hub)
        prefix = f"{hub_name[-4:]}-"
        specs = make_workload(config.instances, config.seed, prefix=prefix)
        self.counter_keys = counter_keys(prefix)
        figures.entity_orchestrations = sum(1 for s in specs if s.name == ENTITY_ORCHESTRATOR)
        figures.instances = len(specs)
        figures.sub_orchestrations = sum(len(s.children) for s in specs)
        figures.by_kind = dict(Counter(s.name for s in specs))
        env = {
            "CHAOS_HUB": hub_name,
            "CHAOS_LEDGER_DIR": str(ledger),
            "ORCHESTRATION_QUEUE_LEASE_SECONDS": str(config.lease_seconds),
            "AzureFunctionsWebHost__hostid": f"chaos-{hub_name.lower()}"[:32],
        }
        self.hosts = [
            HostProc(f"host-{i}", connection, work / f"host-{i}.log", env, workers=config.workers)
            for i in range(config.hosts)
        ]
        started = time.monotonic()
        try:
            await self._torture(hub, client, specs, storage, started)
            self.storage_up.set()
            await self._verify(hub, client, specs, ledger)
            figures.poison_messages = await hub.poison_depths()
        finally:
            for task in list(self._background):
                task.cancel()
            await asyncio.gather(*self._background, return_exceptions=True)
            await hub.close()
            await asyncio.to_thread(storage.stop)
        self._read_logs()
        figures.seconds_total = round(time.monotonic() - started, 1)
        figures.ok = bool(figures.verdict.get("ok")) and figures.stuck == 0
        if config.json_path is not None:
            config.json_path.write_text(json.dumps(asdict(figures), indent=2))
        if config.keep_work_dir or not figures.ok:
            log.warning("work dir kept: %s", work)
            figures.verdict["work_dir"] = str(work)
        else:
            shutil.rmtree(work, ignore_errors=True)
        return figures

    async def _torture(
        self,
        hub: TaskHub,
        client: DurableOrchestrationClient,
        specs: list[Spec],
        storage: Storage,
        started: float,
    ) -> None:
        """Run the hosts, the workload and the chaos until every instance has finished or
        the deadline has passed; the hosts are stopped (and waited for) whatever happens."""
        config, figures = self.config, self.figures
        chaos_task: asyncio.Task[None] | None = None
        try:
            await hub.create_if_not_exists()
            for host in self.hosts:
                host.start()
            ready = await asyncio.gather(*(asyncio.to_thread(h.wait_ready, 90) for h in self.hosts))
            if not all(ready):
                raise RuntimeError(f"hosts not ready: {self.hosts[ready.index(False)].output()}")
            deadline = started + config.deadline
            chaos_task = asyncio.create_task(self._chaos())
            starter = asyncio.create_task(self._start_all(client, specs))
            open_ids = await self._wait_finished(hub, specs, storage, deadline)
            await starter
            figures.seconds_to_finish = round(time.monotonic() - started, 1)
            figures.stuck = len(open_ids)
            figures.stuck_ids = sorted(open_ids)[:50]
            figures.finished = len(specs) + figures.sub_orchestrations - len(open_ids)
            if not open_ids:
                await self._settle_counters(client, counter_totals(specs), deadline)
        finally:
            self.stop_chaos.set()
            if chaos_task is not None:
                await chaos_task
            async with self.killing:
                await asyncio.gather(*(asyncio.to_thread(h.terminate, 30) for h in self.hosts))

    async def _read_counters(
        self, client: DurableOrchestrationClient, deadline: float
    ) -> dict[str, int | None]:
        """Every counter's value (None: the entity does not exist)."""

        async def read(key: str) -> int | None:
            response = await self._retry(
                f"read counter {key}",
                lambda: client.read_entity_state(EntityId("counter", key)),
                deadline,
            )
            return response.entity_state if response.entity_exists else None

        values = await asyncio.gather(*(read(key) for key in self.counter_keys))
        return dict(zip(self.counter_keys, values, strict=True))

    async def _settle_counters(
        self, client: DurableOrchestrationClient, expected: dict[str, int], deadline: float
    ) -> None:
        """Poll the counters until each holds what was added to it or `counter_settle`
        seconds have passed (hosts are still killed meanwhile)."""
        started = time.monotonic()
        until = min(deadline, started + self.config.counter_settle)
        actual: dict[str, int | None] = {}
        while True:
            try:
                actual = await self._read_counters(client, until)
            except Exception as error:
                log.info("reading the counters failed (%s)", type(error).__name__)
            if actual and all(
                counter_exact(expected.get(k, 0), actual.get(k)) for k in self.counter_keys
            ):
                self.figures.counters_settled_after = round(time.monotonic() - started, 1)
                return
            if time.monotonic() > until:
                log.warning("counters not as expected after %.0f s: %s", until - started, actual)
                return
            await asyncio.sleep(0.5)

    async def _requests_not_once(
        self, hub: TaskHub, specs: list[Spec], histories: dict[str, list[dict[str, Any]]]
    ) -> tuple[dict[str, list[str]], int]:
        """For each counter, the requests its entity's batch rows show applied other than
        once: the requests sent to it (from the senders' histories) against the request keys
        of its committed batches (kept for the reorder window, 30 minutes); and how many
        requests were looked up."""
        store = EntityStore(hub)
        found: dict[str, list[str]] = {}
        checked = 0
        for key in self.counter_keys:
            entity = str(EntityId("counter", key))
            sent: dict[str, dict[str, Any]] = {}  # request key -> the request
            for spec in specs:
                for event in histories.get(spec.instance_id, []):
                    if event["EventType"] != "EventSent" or event.get("Name") != ENTITY_OPERATION:
                        continue
                    if event.get("InstanceId") != entity:
                        continue
                    body = event.get("Input")
                    if isinstance(body, str):
                        body = json.loads(body)
                    if isinstance(body, dict) and "id" in body:
                        sent[request_key(str(body["id"]))] = body
            applied: dict[str, list[str]] = {}
            for row in await store.batches(entity):
                for applied_key in str(row.get("Requests") or "").split(","):
                    if applied_key:
                        applied.setdefault(applied_key, []).append(str(row["RowKey"]))
            checked += len(sent)
            lines: list[str] = []
            for request, body in sorted(sent.items(), key=lambda item: item[1]["id"]):
                rows = applied.get(request, [])
                if len(rows) != 1:
                    lines.append(
                        f"request {body['id']} ({body.get('op')}, position {body.get('pos')}) "
                        f"applied {len(rows)} times {[_row_time(r) for r in rows]}"
                    )
            unknown = sorted(set(applied) - set(sent))
            if unknown:
                lines.append(f"{len(unknown)} applied request(s) no sender's history sent")
            found[key] = lines
        return found, checked

    async def _verify(
        self, hub: TaskHub, client: DurableOrchestrationClient, specs: list[Spec], ledger: Path
    ) -> None:
        verdict = Verdict()
        semaphore = asyncio.Semaphore(16)
        deadline = time.monotonic() + 300

        async def status_of(instance_id: str) -> Any:
            async with semaphore:
                return await self._retry(
                    f"status of {instance_id}",
                    lambda: client.get_status(
                        instance_id, show_history=True, show_history_output=True
                    ),
                    deadline,
                )

        targets: list[tuple[str, str, Any, dict[str, int] | None, dict[str, int] | None]] = []
        for spec in specs:
            raised = dict(self.raised.get(spec.instance_id, Counter()))
            uncertain = dict(self.uncertain.get(spec.instance_id, Counter()))
            targets.append(
                (spec.instance_id, spec.expected_status, spec.expected_output, raised, uncertain)
            )
            targets += [(child, "Completed", output, None, None) for child, output in spec.children]
        statuses = await asyncio.gather(*(status_of(t[0]) for t in targets))
        histories: dict[str, list[dict[str, Any]]] = {}
        for (instance_id, status_name, output, raised, uncertain), status in zip(
            targets, statuses, strict=True
        ):
            check_instance(verdict, instance_id, status, status_name, output, raised, uncertain)
            histories[instance_id] = (status.history or []) if status is not None else []
        expected = counter_totals(specs)
        actual = await self._read_counters(client, deadline)
        not_once, checked = await self._retry(
            "read the entities' batches",
            lambda: self._requests_not_once(hub, specs, histories),
            deadline,
        )
        operations = sum(s.expected_output["ops"] for s in specs if s.name == ENTITY_ORCHESTRATOR)
        check_counters(verdict, expected, actual, operations, not_once, checked)
        keys = [key for spec in specs for key in spec.activity_keys]
        keys += [f"{child}:0" for spec in specs for child, _ in spec.children]
        check_ledger(verdict, read_ledger(ledger), keys)
        repaired = {s.instance_id: s.repairs async for s in hub.iterate_states() if s.repairs}
        self.figures.repairs = sum(repaired.values())
        self.figures.repaired_ids = sorted(repaired)[:50]
        self.figures.verdict = {"ok": verdict.ok, **verdict.summary()}

    def _read_logs(self) -> None:
        for host in self.hosts:
            text = host.log_path.read_text(errors="replace") if host.log_path.exists() else ""
            self.figures.resend_log_lines += len(re.findall(r"re-sending \d+ open work", text))
            self.figures.tracebacks_in_host_logs += text.count("Traceback (most recent call")


def _row_time(row_key: str) -> str:
    """A batch row's key (`applied-<ms>-<batch>`) as `HH:MM:SS,mmm #batch`, the host logs'
    clock."""
    parts = row_key.split("-")
    try:
        at = time.strftime("%H:%M:%S", time.localtime(int(parts[1]) / 1000))
        return f"{at},{int(parts[1]) % 1000:03d} #{int(parts[2])}"
    except (IndexError, ValueError):
        return row_key


def print_figures(figures: Figures) -> None:
    verdict = figures.verdict
    lines = [
        f"torture run on hub {figures.hub}: {'PASSED' if figures.ok else 'FAILED'}",
        f"  hosts {figures.hosts} x {figures.workers_per_host} worker(s); "
        f"instances {figures.instances} (+{figures.sub_orchestrations} sub-orchestrations) "
        f"{figures.by_kind}",
        f"  finished {figures.finished}, stuck {figures.stuck} "
        f"in {figures.seconds_to_finish} s (total {figures.seconds_total} s)",
        f"  SIGKILLs {figures.kills}, host restarts {figures.host_restarts} "
        f"(unexpected exits {figures.host_exits_unexpected}), Azurite restarts "
        f"{figures.azurite_restarts} (down {figures.azurite_down_seconds} s)",
        f"  events raised {figures.events_raised} (retried {figures.event_raise_retries}), "
        f"repairs {figures.repairs}, re-send log lines {figures.resend_log_lines}, "
        f"tracebacks in host logs {figures.tracebacks_in_host_logs}",
        f"  checked {verdict.get('instances_checked')}: as expected "
        f"{verdict.get('completed_as_expected')}, wrong status {verdict.get('wrong_status')}, "
        f"wrong output {verdict.get('wrong_output')}, duplicated history events "
        f"{verdict.get('duplicated_history_events')}, activities never run "
        f"{verdict.get('activities_never_run')}",
        f"  history events {verdict.get('history_events')}, activity executions "
        f"{verdict.get('activity_executions')} for {verdict.get('activity_keys')} keys "
        f"(re-runs {verdict.get('activity_reruns')}), poison {figures.poison_messages}",
        f"  entity orchestrations {figures.entity_orchestrations}, entity operations "
        f"{verdict.get('entity_operations')}, counters expected/actual "
        + ", ".join(
            f"{key.rsplit('-', 1)[-1]}: {c['expected']}/{c['actual']}"
            for key, c in (verdict.get("counters") or {}).items()
        )
        + f"; requests applied once checked {verdict.get('entity_requests_checked')}, "
        f"problems {verdict.get('wrong_counters')}; settled after "
        f"{figures.counters_settled_after} s",
    ]
    for problem in verdict.get("problems", [])[:20]:
        lines.append(f"  PROBLEM {problem}")
    if figures.repaired_ids:
        lines.append(f"  REPAIRED {figures.repaired_ids[:20]}")
    if figures.stuck_ids:
        lines.append(f"  STUCK {figures.stuck_ids[:20]}")
    print("\n".join(lines), flush=True)


def run(config: Config) -> Figures:
    return asyncio.run(Torture(config).run())
