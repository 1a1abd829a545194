"""The soak run: a steady offered rate of mixed workflows on N hosts, sampled over time.

    python -m tests.soak [--hosts 2] [--minutes 20] [--rate R] [--json soak-report.json] ...

N host processes of tests/apps/chaos_app share one Azurite that persists to disk; nothing is
killed. For `minutes` the harness starts workflows at `rate` per second (drawn from
tests/soak/load.py's mix), raises their external events, waits for each to finish and checks
it at once (status, output, history: tests/chaos/verify.py). Every `period` seconds it
records a sample: workflows started and completed in the period, in flight, wrong ones,
each host's RSS and CPU (with its worker processes), Azurite's. In-flight instances are
capped: a start due while the cap is reached is shed and counted (the hosts fell behind),
so a backlog cannot grow without bound. After the load the in-flight ones get
`drain_seconds` to finish; then the hosts are stopped and the judges run (tests/soak/judge.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from orchestration.azure import OutcomeUnknown
from orchestration.client import DurableOrchestrationClient, DurableOrchestrationStatus
from orchestration.core.entities import EntityId
from orchestration.storage.hub import TaskHub
from tests.chaos.cluster import HostProc, Storage
from tests.chaos.verify import Verdict, check_instance, check_ledger, read_ledger
from tests.chaos.workload import Spec
from tests.soak.judge import (
    MemoryBound,
    MemoryVerdict,
    ThroughputVerdict,
    judge_memory,
    judge_throughput,
)
from tests.soak.load import MIX, Offered
from tests.soak.samples import Meter, Period, Sample

log = logging.getLogger("soak")

# Workflows per second that 2 hosts x 1 worker sustain on this 2-core machine with headroom
# (README "Reliability" has the measurement).
DEFAULT_RATE = 5.0


@dataclass
class Config:
    hosts: int = 2
    workers: int = 1
    minutes: float = 20.0
    # Minutes of warm-up before the memory window; None: the first half of the load.
    warmup_minutes: float | None = None
    period: float = 10.0
    rate: float = DEFAULT_RATE
    max_in_flight: int = 200
    seed: int = 7
    mix: tuple[tuple[str, int], ...] = MIX
    # A workflow that takes longer than this is late (a failure); one still unfinished at
    # the end of the drain is stuck.
    late_after: float = 120.0
    drain_seconds: float = 120.0
    # Throughput is judged on the last `throughput_seconds` of the load.
    throughput_seconds: float = 60.0
    throughput_floor: float = 0.8
    memory_bound: MemoryBound = field(default_factory=MemoryBound)
    # Rows of the printed table span at least this many seconds (the JSON has every sample).
    table_seconds: float = 60.0
    host_env: dict[str, str] = field(default_factory=dict)
    work_dir: Path | None = None
    keep_work_dir: bool = False
    json_path: Path | None = None

    @property
    def load_seconds(self) -> float:
        return self.minutes * 60

    @property
    def warmup_seconds(self) -> float:
        if self.warmup_minutes is None:
            return self.load_seconds / 2
        return self.warmup_minutes * 60


@dataclass
class Report:
    hub: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    memory_bound: str = ""
    offered: int = 0
    started: int = 0
    shed: int = 0
    completed: int = 0
    wrong: int = 0
    stuck: int = 0
    stuck_ids: list[str] = field(default_factory=list)
    late: int = 0
    late_ids: list[str] = field(default_factory=list)
    by_kind: dict[str, int] = field(default_factory=dict)
    sub_orchestrations: int = 0
    events_raised: int = 0
    event_raise_failures: int = 0
    start_failures: int = 0
    host_exits_unexpected: list[str] = field(default_factory=list)
    host_exit_codes: dict[str, int | None] = field(default_factory=dict)
    tracebacks_in_host_logs: int = 0
    poison_messages: dict[str, int] = field(default_factory=dict)
    # Each shared counter entity: [the adds the started tallies sent it, its final count].
    counters: dict[str, list[int]] = field(default_factory=dict)
    verdict: dict[str, Any] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    memory: list[MemoryVerdict] = field(default_factory=list)
    azurite_memory: MemoryVerdict | None = None
    throughput: ThroughputVerdict | None = None
    seconds_total: float = 0.0
    failures: list[str] = field(default_factory=list)
    ok: bool = False


class Soak:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.report = Report(
            config={k: str(v) for k, v in asdict(config).items()},
            memory_bound=config.memory_bound.describe(),
        )
        self.period = Period()
        self.verdict = Verdict()
        self.in_flight: dict[str, float] = {}
        self.activity_keys: list[str] = []
        self.counter_adds: dict[str, int] = {}
        self.hosts: list[HostProc] = []
        self.storage: Storage | None = None
        self.load_started = 0.0
        self.meter = Meter()
        self._checks = asyncio.Semaphore(8)
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coroutine: Any) -> None:
        """Run in the background, keeping a reference (the loop holds only a weak one)."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- one workflow ---------------------------------------------------------------------
    async def _workflow(self, client: DurableOrchestrationClient, kind: str, spec: Spec) -> None:
        report = self.report
        began = time.monotonic()
        self.in_flight[spec.instance_id] = began
        try:
            try:
                await client.start_new(spec.name, spec.instance_id, spec.input)
            except Exception:
                log.exception("could not start %s", spec.instance_id)
                report.start_failures += 1
                self.period.wrong += 1
                return
            self.period.started += 1
            report.started += 1
            for key, amount in spec.counter_adds.items():
                self.counter_adds[key] = self.counter_adds.get(key, 0) + amount
            report.by_kind[kind] = report.by_kind.get(kind, 0) + 1
            report.sub_orchestrations += len(spec.children)
            self.activity_keys += spec.activity_keys
            self.activity_keys += [f"{child}:0" for child, _ in spec.children]
            raised: Counter[str] = Counter()
            uncertain: Counter[str] = Counter()
            raises = [
                asyncio.create_task(self._raise(client, spec.instance_id, event, raised, uncertain))
                for event in spec.events
            ]
            try:
                status = await self._finished(client, spec.instance_id)
            except asyncio.CancelledError:
                for task in raises:
                    task.cancel()
                raise
            # The check counts the events raised: every raise must have returned first.
            await asyncio.gather(*raises, return_exceptions=True)
            if status is None:
                self._check_missing(spec)
                return
            elapsed = (status.last_updated_time - status.created_time).total_seconds()
            self.period.latencies.append(elapsed)
            if elapsed > self.config.late_after:
                report.late += 1
                report.late_ids.append(spec.instance_id)
            good = await self._check(client, spec, raised, uncertain)
            self.period.completed += 1
            report.completed += 1
            self.period.activities += len(spec.activity_keys) + len(spec.children)
            if not good:
                self.period.wrong += 1
                report.wrong += 1
        finally:
            self.in_flight.pop(spec.instance_id, None)

    async def _finished(
        self, client: DurableOrchestrationClient, instance_id: str
    ) -> DurableOrchestrationStatus | None:
        """The instance's status once it has finished (None if it does not exist); waits
        until cancelled (the drain's end: then it is stuck)."""
        while True:
            status = await client.wait_for_completion(
                instance_id, timeout_in_milliseconds=60_000, poll_ms=1000
            )
            if status is None or status.runtime_status.is_terminal:
                return status

    def _check_missing(self, spec: Spec) -> None:
        found = Verdict()
        check_instance(found, spec.instance_id, None, spec.expected_status, spec.expected_output)
        _merge(self.verdict, found)
        self.period.wrong += 1
        self.report.wrong += 1

    async def _check(
        self,
        client: DurableOrchestrationClient,
        spec: Spec,
        raised: Counter[str],
        uncertain: Counter[str],
    ) -> bool:
        """Check the finished instance and its sub-orchestrations; True when all is as expected."""
        targets = [(spec.instance_id, spec.expected_status, spec.expected_output)]
        targets += [(child, "Completed", output) for child, output in spec.children]
        found = Verdict()
        async with self._checks:
            for instance_id, expected_status, expected_output in targets:
                status = await client.get_status(
                    instance_id, show_history=True, show_history_output=True
                )
                mine = instance_id == spec.instance_id
                check_instance(
                    found,
                    instance_id,
                    status,
                    expected_status,
                    expected_output,
                    dict(raised) if mine else None,
                    dict(uncertain) if mine else None,
                )
        _merge(self.verdict, found)
        return found.ok and found.completed_as_expected == len(targets)

    async def _raise(
        self,
        client: DurableOrchestrationClient,
        instance_id: str,
        event: tuple[float, str, Any],
        raised: Counter[str],
        uncertain: Counter[str],
    ) -> None:
        delay, name, data = event
        await asyncio.sleep(delay)
        for attempt in range(5):
            try:
                await client.raise_event(instance_id, name, data)
            except OutcomeUnknown:
                # Perhaps applied: the instance's check then allows one more copy.
                uncertain[name] += 1
                log.info("raise %s to %s: outcome unknown; retrying", name, instance_id)
            except Exception as error:
                log.info("raise %s to %s failed (%s); retrying", name, instance_id, error)
            else:
                raised[name] += 1
                self.report.events_raised += 1
                return
            await asyncio.sleep(0.5 * (attempt + 1))
        self.report.event_raise_failures += 1

    # -- the load and the samples ---------------------------------------------------------
    async def _offer(self, client: DurableOrchestrationClient, offered: Offered) -> None:
        """Start workflows at the offered rate until the load's end (shedding at the cap)."""
        config = self.config
        interval = 1 / config.rate
        end = self.load_started + config.load_seconds
        due = self.load_started
        while due < end:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            kind, spec = offered.next()
            self.report.offered += 1
            if len(self.in_flight) >= config.max_in_flight:
                self.period.shed += 1
                self.report.shed += 1
            else:
                self._spawn(self._workflow(client, kind, spec))
            due += interval

    def _sample(self, phase: str, seconds: float) -> Sample:
        period, self.period = self.period, Period()
        hosts = [
            (h.name, h.process.pid if h.running and h.process is not None else None)
            for h in self.hosts
        ]
        azurite = self.storage.azurite.pid if self.storage and self.storage.azurite else None
        return self.meter.measure(
            period,
            phase=phase,
            t=time.monotonic() - self.load_started,
            seconds=seconds,
            in_flight=len(self.in_flight),
            hosts=hosts,
            azurite_pid=azurite,
        )

    async def _sampler(self, stop: asyncio.Event) -> None:
        config = self.config
        last = self.load_started
        self._sample("warm-up", 0.0)  # primes the CPU counters
        self.period = Period()
        tick = self.load_started
        while not stop.is_set():
            tick += config.period
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, tick - time.monotonic()))
            now = time.monotonic()
            elapsed = now - self.load_started
            if elapsed <= config.warmup_seconds:
                phase = "warm-up"
            elif elapsed <= config.load_seconds + config.period / 2:
                phase = "measure"
            else:
                phase = "drain"
            sample = self._sample(phase, now - last)
            last = now
            self.report.samples.append(sample)
            for host in self.hosts:
                if not host.running and host.name not in self.report.host_exits_unexpected:
                    self.report.host_exits_unexpected.append(host.name)
                    log.error("%s exited during the soak: %s", host.name, host.output()[-2000:])
            log.info("%s", sample.line())

    # -- the run --------------------------------------------------------------------------
    async def run(self) -> Report:
        config, report = self.config, self.report
        work = config.work_dir or Path(tempfile.mkdtemp(prefix="soak-"))
        work.mkdir(parents=True, exist_ok=True)
        ledger = work / "ledger"
        ledger.mkdir(exist_ok=True)
        hub_name = f"Soak{uuid.uuid4().hex[:10]}"
        report.hub = hub_name
        began = time.monotonic()
        self.storage = Storage(work / "azurite")
        connection = await self.storage.start()
        hub = TaskHub.from_connection_string(connection, hub_name)
        client = DurableOrchestrationClient(hub)
        env = {
            "CHAOS_HUB": hub_name,
            "CHAOS_LEDGER_DIR": str(ledger),
            "AzureFunctionsWebHost__hostid": f"soak-{hub_name.lower()}"[:32],
            **config.host_env,
        }
        self.hosts = [
            HostProc(f"host-{i}", connection, work / f"host-{i}.log", env, workers=config.workers)
            for i in range(config.hosts)
        ]
        try:
            await hub.create_if_not_exists()
            await self._load(client, Offered(config.seed, f"{hub_name[-4:]}-", config.mix))
            report.counters = await self._counters(client)
            check_ledger(self.verdict, read_ledger(ledger), self.activity_keys)
            report.verdict = {"ok": self.verdict.ok, **self.verdict.summary()}
            report.poison_messages = await hub.poison_depths()
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await asyncio.gather(*(asyncio.to_thread(h.terminate, 30) for h in self.hosts))
            await hub.close()
            await asyncio.to_thread(self.storage.stop)
        for host in self.hosts:
            report.host_exit_codes[host.name] = host.process.returncode if host.process else None
            if host.log_path.exists():
                text = host.log_path.read_text(errors="replace")
                report.tracebacks_in_host_logs += text.count("Traceback (most recent call")
        report.seconds_total = round(time.monotonic() - began, 1)
        self._judge()
        if config.json_path is not None:
            config.json_path.write_text(json.dumps(asdict(report), indent=2))
        if config.keep_work_dir or not report.ok:
            log.warning("work dir kept: %s", work)
            report.verdict["work_dir"] = str(work)
        else:
            shutil.rmtree(work, ignore_errors=True)
        return report

    async def _load(self, client: DurableOrchestrationClient, offered: Offered) -> None:
        """Start the hosts, offer the load, drain, and stop sampling."""
        config = self.config
        for host in self.hosts:
            host.start()
        ready = await asyncio.gather(*(asyncio.to_thread(h.wait_ready, 90) for h in self.hosts))
        if not all(ready):
            raise RuntimeError(f"hosts not ready: {self.hosts[ready.index(False)].output()}")
        self.load_started = time.monotonic()
        stop = asyncio.Event()
        sampler = asyncio.create_task(self._sampler(stop))
        try:
            await self._offer(client, offered)
            drain_end = time.monotonic() + config.drain_seconds
            while self.in_flight and time.monotonic() < drain_end:
                await asyncio.sleep(0.2)
            # Let the sampler close the period the last completion fell in.
            await asyncio.sleep(0.1)
        finally:
            stop.set()
            await sampler
        if self.in_flight:
            self.report.stuck += len(self.in_flight)
            self.report.stuck_ids += sorted(self.in_flight)

    async def _counters(
        self, client: DurableOrchestrationClient, patience: float = 60.0
    ) -> dict[str, list[int]]:
        """Each counter's expected and final count, once they agree or `patience` passes
        (a tally's last signal may still be on its way when the tally ends)."""
        deadline = time.monotonic() + patience
        while True:
            found: dict[str, list[int]] = {}
            for key, expected in sorted(self.counter_adds.items()):
                response = await client.read_entity_state(EntityId("counter", key))
                found[key] = [expected, int(response.entity_state or 0)]
            if all(e == a for e, a in found.values()) or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.5)

    def _judge(self) -> None:
        config, report = self.config, self.report
        window = (config.warmup_seconds, config.load_seconds + config.period / 2)
        for index, host in enumerate(self.hosts):
            series = [(s.t, float(s.hosts[index].rss_kib)) for s in report.samples]
            series = [(t, rss) for t, rss in series if rss > 0]
            report.memory.append(judge_memory(host.name, series, window, config.memory_bound))
        azurite = [(s.t, float(s.azurite_rss_kib)) for s in report.samples]
        report.azurite_memory = judge_memory("azurite", azurite, window, config.memory_bound)
        load = [s for s in report.samples if s.phase != "drain"]
        tail, seconds = [], 0.0
        for sample in reversed(load):
            if seconds >= config.throughput_seconds:
                break
            tail.append((sample.seconds, sample.completed))
            seconds += sample.seconds
        report.throughput = judge_throughput(tail, config.rate, config.throughput_floor)
        failures = report.failures
        failures += [f"memory: {m.line()}" for m in report.memory if not m.ok]
        if not report.throughput.ok:
            failures.append(report.throughput.line())
        if report.shed:
            failures.append(f"the hosts fell behind: {report.shed} starts shed at the cap")
        if report.wrong or not report.verdict.get("ok"):
            failures.append(f"{report.wrong} workflow(s) wrong; see verdict.problems")
        if report.stuck:
            failures.append(f"{report.stuck} workflow(s) stuck: {report.stuck_ids[:10]}")
        if report.late:
            failures.append(
                f"{report.late} workflow(s) took over {config.late_after:.0f} s: "
                f"{report.late_ids[:10]}"
            )
        if report.start_failures or report.event_raise_failures:
            failures.append(
                f"{report.start_failures} start(s), {report.event_raise_failures} event "
                "raise(s) failed"
            )
        if report.host_exits_unexpected:
            failures.append(f"hosts exited during the soak: {report.host_exits_unexpected}")
        wrong_counts = {k: v for k, v in report.counters.items() if v[0] != v[1]}
        if wrong_counts:
            failures.append(f"entity counters wrong ([expected, actual]): {wrong_counts}")
        if any(report.poison_messages.values()):
            failures.append(f"poison messages: {report.poison_messages}")
        report.ok = not failures


def _merge(total: Verdict, part: Verdict) -> None:
    """Add `part`'s instance checks to `total`."""
    total.instances += part.instances
    total.completed_as_expected += part.completed_as_expected
    total.history_events += part.history_events
    total.wrong_status += part.wrong_status
    total.wrong_output += part.wrong_output
    total.duplicated_history += part.duplicated_history


def run(config: Config) -> Report:
    return asyncio.run(Soak(config).run())
