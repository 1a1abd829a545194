"""The pure core: history events, tasks, the orchestration context and the replay executor.

No I/O, no clock, no Azure imports: everything here is a function of its inputs.
"""

from __future__ import annotations

from orchestration.core.actions import (
    Action,
    CompleteOrchestration,
    ContinueAsNewAction,
    CreateTimer,
    ScheduleActivity,
    SendEvent,
    StartSubOrchestration,
)
from orchestration.core.context import DurableOrchestrationContext, ReplaySafeLogger
from orchestration.core.errors import (
    NonDeterminismError,
    OrchestrationError,
    OrchestratorNotRegisteredError,
    OrchestratorUsageError,
    TaskFailedError,
)
from orchestration.core.executor import (
    ExecutionResult,
    OrchestrationExecutor,
    OrchestrationSession,
    execute,
)
from orchestration.core.history import (
    ContinueAsNew,
    EventRaised,
    EventSent,
    EventType,
    ExecutionCompleted,
    ExecutionResumed,
    ExecutionStarted,
    ExecutionSuspended,
    ExecutionTerminated,
    FailureDetails,
    HistoryEvent,
    OrchestratorStarted,
    ParentInstance,
    SubOrchestrationInstanceCompleted,
    SubOrchestrationInstanceCreated,
    SubOrchestrationInstanceFailed,
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    TimerCreated,
    TimerFired,
    event_from_dict,
    event_to_dict,
)
from orchestration.core.replayer import Replayer, ReplayReport
from orchestration.core.retry import RetryOptions
from orchestration.core.runtime import DroppedEvent
from orchestration.core.status import OrchestrationRuntimeStatus
from orchestration.core.tasks import (
    AtomicTask,
    CompoundTask,
    RetryableTask,
    TaskBase,
    TaskState,
    TimerTask,
    WhenAllTask,
    WhenAnyTask,
)

__all__ = [
    "Action",
    "AtomicTask",
    "CompleteOrchestration",
    "CompoundTask",
    "ContinueAsNew",
    "ContinueAsNewAction",
    "CreateTimer",
    "DroppedEvent",
    "DurableOrchestrationContext",
    "EventRaised",
    "EventSent",
    "EventType",
    "ExecutionCompleted",
    "ExecutionResult",
    "ExecutionResumed",
    "ExecutionStarted",
    "ExecutionSuspended",
    "ExecutionTerminated",
    "FailureDetails",
    "HistoryEvent",
    "NonDeterminismError",
    "OrchestrationError",
    "OrchestrationExecutor",
    "OrchestrationRuntimeStatus",
    "OrchestrationSession",
    "OrchestratorNotRegisteredError",
    "OrchestratorStarted",
    "OrchestratorUsageError",
    "ParentInstance",
    "ReplayReport",
    "ReplaySafeLogger",
    "Replayer",
    "RetryOptions",
    "RetryableTask",
    "ScheduleActivity",
    "SendEvent",
    "StartSubOrchestration",
    "SubOrchestrationInstanceCompleted",
    "SubOrchestrationInstanceCreated",
    "SubOrchestrationInstanceFailed",
    "TaskBase",
    "TaskCompleted",
    "TaskFailed",
    "TaskFailedError",
    "TaskScheduled",
    "TaskState",
    "TimerCreated",
    "TimerFired",
    "TimerTask",
    "WhenAllTask",
    "WhenAnyTask",
    "event_from_dict",
    "event_to_dict",
    "execute",
]
