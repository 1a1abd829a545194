"""Run one function invocation: bind inputs, call (thread pool or loop), deliver outputs, log."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import time
import uuid
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orchestration.bindings.apply import OutValue
from orchestration.host.app_loader import FunctionSpec
from orchestration.host.bindings import BindingRegistry, Invocation, InvocationContext
from orchestration.host.settings import format_timespan

if TYPE_CHECKING:
    from orchestration.host.bindings import HostContext

log = logging.getLogger("orchestration.host")
INVOCATION_LOGGER = "orchestration.invocations"  # "Executed 'Functions.X'" lines
invocation_log = logging.getLogger(INVOCATION_LOGGER)


class FunctionTimeoutError(TimeoutError):
    """An invocation ran longer than host.json functionTimeout."""


@dataclass
class InvocationResult:
    """The outcome of one invocation; `outputs` holds Out values and `$return`."""

    invocation_id: str
    function_name: str
    succeeded: bool
    return_value: Any = None
    outputs: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None
    duration_ms: float = 0.0


class Invoker:
    """Invokes indexed functions with their bindings; never raises for a function's failure."""

    def __init__(self, registry: BindingRegistry, executor: ThreadPoolExecutor) -> None:
        self.registry = registry
        self.executor = executor
        self.host: HostContext | None = (
            None  # set once the context exists (they refer to each other)
        )
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no invocation runs (True) or the timeout passes (False)."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def invoke(
        self,
        function: FunctionSpec,
        trigger_value: Any,
        trigger_metadata: dict[str, Any] | None = None,
        invocation_id: str | None = None,
    ) -> InvocationResult:
        """Run `function` with `trigger_value` bound to its trigger parameter."""
        assert self.host is not None, "Invoker.host must be set before invoking"
        invocation = Invocation(
            invocation_id=invocation_id or str(uuid.uuid4()),
            function=function,
            trigger_value=trigger_value,
            trigger_metadata=trigger_metadata or {},
        )
        result = InvocationResult(invocation.invocation_id, function.name, succeeded=False)
        self.in_flight += 1
        self._idle.clear()
        started = time.perf_counter()
        try:
            outs = await self._call(invocation, result)
            await self._deliver(invocation, outs, result)
            result.succeeded = True
        except Exception as err:
            result.error = err
            log.error(
                "Executed 'Functions.%s' failed (Id=%s): %s: %s",
                function.name,
                invocation.invocation_id,
                type(err).__name__,
                err,
                exc_info=err,
            )
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self._idle.set()
            result.duration_ms = (time.perf_counter() - started) * 1000
            outcome = "Succeeded" if result.succeeded else "Failed"
            invocation_log.info(
                "Executed 'Functions.%s' (%s, Id=%s, Duration=%.0fms)",
                function.name,
                outcome,
                invocation.invocation_id,
                result.duration_ms,
                extra={
                    "function": function.name,
                    "invocation_id": invocation.invocation_id,
                    "duration_ms": round(result.duration_ms, 3),
                    "outcome": outcome,
                    "trigger": function.trigger.type,
                },
            )
        return result

    async def _call(self, invocation: Invocation, result: InvocationResult) -> dict[str, OutValue]:
        host = self.host
        assert host is not None
        function = invocation.function
        kwargs: dict[str, Any] = {function.trigger.name: invocation.trigger_value}
        outs: dict[str, OutValue] = {}
        for binding in function.other_bindings:
            if binding.name == "$return":
                continue
            if binding.is_output and not binding.is_input:
                outs[binding.name] = kwargs[binding.name] = OutValue()
            else:
                handler = self.registry.binding(binding.type)
                kwargs[binding.name] = await handler.bind_input(binding, invocation, host)
        if function.wants_context:
            kwargs["context"] = InvocationContext(
                invocation.invocation_id, function.name, str(host.app_dir)
            )
        if function.is_async:
            running: Awaitable[Any] = function.func(**kwargs)
        else:
            loop = asyncio.get_running_loop()
            call = functools.partial(contextvars.copy_context().run, function.func, **kwargs)
            running = loop.run_in_executor(self.executor, call)
        timeout = host.host_json.function_timeout
        if timeout is None:
            result.return_value = await running
            return outs
        task = asyncio.ensure_future(running)
        try:
            done, _ = await asyncio.wait({task}, timeout=timeout.total_seconds())
        finally:
            if not task.done():
                # A sync function's thread cannot be stopped: it is abandoned, its result ignored.
                task.cancel()
        if not done:
            raise FunctionTimeoutError(
                f"Timeout value of {format_timespan(timeout)} exceeded by function "
                f"'Functions.{function.name}' (Id: '{invocation.invocation_id}')"
            )
        result.return_value = task.result()
        return outs

    async def _deliver(
        self, invocation: Invocation, outs: dict[str, OutValue], result: InvocationResult
    ) -> None:
        host = self.host
        assert host is not None
        for binding in invocation.function.other_bindings:
            if not binding.is_output:
                continue
            if binding.name == "$return":
                value = result.return_value
                present = value is not None
            else:
                out = outs.get(binding.name)
                value = out.get() if out else None
                present = out is not None and out.is_set
            result.outputs[binding.name] = value
            if present:
                handler = self.registry.binding(binding.type)
                await handler.write_output(binding, value, invocation, host)
