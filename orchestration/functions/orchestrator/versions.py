"""The worker's version check (DF's `versionMatchStrategy` / `versionFailureStrategy`).

Before an instance's history is replayed here, its version (stamped when it was created) is
checked against this worker's `defaultVersion`. An instance this worker may not run is either
failed (`Fail`) or left for a worker that may (`Reject`, DF's default), as in a rolling
deploy where old and new workers share one task hub.

Rejecting sends each of the batch's events back to the control queue as a new message (the
same message id, so its copies are still recognised), visible again after `retry_delay`,
and then lets the delivery succeed. The received message is deleted, so its dequeue count
never grows by rejection and it is never poisoned for it; a newer worker picks the copy up.
An event-less wake-up is not sent back: it carries nothing, and the quiet-instance sweep
sends another. The first rejection of an instance is logged as a warning, the rest at debug.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from datetime import timedelta

from orchestration.core.history import FailureDetails
from orchestration.core.versioning import VersionFailureStrategy, VersioningPolicy
from orchestration.functions.orchestrator.inbox import Arrival
from orchestration.storage.hub import InstanceState, TaskHub

log = logging.getLogger("orchestration.versioning")

_REMEMBERED = 10_000


class VersionMismatchError(Exception):
    """An instance whose version this worker may not run (raised before its replay)."""

    def __init__(self, state: InstanceState, message: str) -> None:
        super().__init__(message)
        self.state = state


class VersionGate:
    """Decides, per instance, whether this worker runs it, and carries out the verdict."""

    def __init__(self, policy: VersioningPolicy, retry_delay: timedelta) -> None:
        self.policy = policy
        self.retry_delay = retry_delay
        self.rejected = 0  # events sent back
        self._logged: OrderedDict[str, None] = OrderedDict()

    def check(self, state: InstanceState) -> None:
        """Raise VersionMismatchError if this worker may not run `state`'s instance."""
        if not self.policy.can_run(state.version):
            raise VersionMismatchError(state, self.policy.mismatch(state.version))

    @property
    def fails(self) -> bool:
        return self.policy.failure is VersionFailureStrategy.FAIL

    def failure(self, error: VersionMismatchError) -> FailureDetails:
        return FailureDetails("VersionMismatchError", f"{error} versionFailureStrategy is Fail.")

    async def reject(
        self, hub: TaskHub, error: VersionMismatchError, batch: Sequence[Arrival]
    ) -> None:
        """Send the batch's events back for another worker (see the module docstring)."""
        instance_id = error.state.instance_id
        sent = 0
        for arrival in batch:
            if arrival.message.event is not None:
                await hub.send_control(arrival.message, self.retry_delay)
                sent += 1
        self.rejected += sent
        first = instance_id not in self._logged
        self._logged[instance_id] = None
        self._logged.move_to_end(instance_id)
        if len(self._logged) > _REMEMBERED:
            self._logged.popitem(last=False)
        log.log(
            logging.WARNING if first else logging.DEBUG,
            "not running this instance here: %s versionFailureStrategy is Reject, so its "
            "%d event(s) go back to the queue for a worker that can run it",
            error,
            sent,
            extra={"instance_id": instance_id, "event": "version_rejected"},
        )
