// What an instance's history means for its timeline: spans of activities, timers and
// sub-orchestrations (scheduled -> finished, with retries numbered), points for external
// events, and the execution's own span. Pure: no DOM, so Node's test runner can check it.

const time = (text) => (text ? Date.parse(text) : NaN);

// Each history entry is DF's shape: { EventType, EventId, Timestamp, Name, ... }.
export function timeline(events, now = Date.now()) {
  const spans = [];
  const open = new Map(); // EventId -> span, for tasks, timers and sub-orchestrations
  const attempts = new Map(); // activity name -> attempts so far
  const failedBefore = new Set(); // activity names whose last attempt failed
  let execution = null;
  let end = null;
  for (const event of events || []) {
    const at = time(event.Timestamp);
    switch (event.EventType) {
      case "ExecutionStarted":
        execution = {
          kind: "orchestration",
          name: event.Name,
          start: at,
          end: null,
          outcome: "Running",
          parent: event.Parent || null,
        };
        break;
      case "ExecutionCompleted":
        end = at;
        if (execution) {
          execution.end = at;
          execution.outcome = event.OrchestrationStatus || event.Status || "Completed";
        }
        break;
      case "ExecutionTerminated":
        end = at;
        if (execution) {
          execution.end = at;
          execution.outcome = "Terminated";
        }
        break;
      case "ContinueAsNew":
        end = at;
        if (execution) {
          execution.end = at;
          execution.outcome = "ContinuedAsNew";
        }
        break;
      case "TaskScheduled": {
        const attempt = (attempts.get(event.Name) || 0) + 1;
        attempts.set(event.Name, attempt);
        const span = {
          kind: "activity",
          id: event.EventId,
          name: event.Name,
          start: at,
          end: null,
          outcome: "Running",
          attempt,
          retry: failedBefore.has(event.Name),
        };
        open.set(event.EventId, span);
        spans.push(span);
        break;
      }
      case "TaskCompleted":
      case "TaskFailed":
      case "SubOrchestrationInstanceCompleted":
      case "SubOrchestrationInstanceFailed": {
        const span = open.get(event.TaskScheduledId);
        if (!span) break;
        span.end = at;
        const failed = event.EventType.endsWith("Failed");
        span.outcome = failed ? "Failed" : "Completed";
        if (failed && event.Failure) span.failure = event.Failure;
        if (span.kind === "activity") {
          if (failed) failedBefore.add(span.name);
          else failedBefore.delete(span.name);
        }
        open.delete(event.TaskScheduledId);
        break;
      }
      case "TimerCreated": {
        const span = {
          kind: "timer",
          id: event.EventId,
          name: "timer",
          start: at,
          end: null,
          due: time(event.FireAt),
          outcome: "Waiting",
        };
        open.set(event.EventId, span);
        spans.push(span);
        break;
      }
      case "TimerFired": {
        const span = open.get(event.TimerId);
        if (!span) break;
        span.end = at;
        span.outcome = "Fired";
        open.delete(event.TimerId);
        break;
      }
      case "SubOrchestrationInstanceCreated": {
        const span = {
          kind: "sub-orchestration",
          id: event.EventId,
          name: event.Name,
          instanceId: event.InstanceId,
          start: at,
          end: null,
          outcome: "Running",
        };
        open.set(event.EventId, span);
        spans.push(span);
        break;
      }
      case "EventRaised":
        spans.push({ kind: "event", name: event.Name, start: at, end: at, outcome: "Raised" });
        break;
      case "EventSent":
        spans.push({
          kind: "event-sent",
          name: event.Name,
          instanceId: event.InstanceId,
          start: at,
          end: at,
          outcome: "Sent",
        });
        break;
      default:
        break;
    }
  }
  const stop = end ?? now;
  for (const span of spans) {
    span.open = span.end === null;
    if (span.open) span.end = Math.max(stop, span.start);
    span.duration = span.end - span.start;
  }
  if (execution) {
    execution.open = execution.end === null;
    if (execution.open) execution.end = Math.max(stop, execution.start);
    execution.duration = execution.end - execution.start;
  }
  const starts = [execution?.start, ...spans.map((s) => s.start)].filter(Number.isFinite);
  const ends = [execution?.end, ...spans.map((s) => s.end)].filter(Number.isFinite);
  const from = starts.length ? Math.min(...starts) : now;
  const to = ends.length ? Math.max(...ends) : now;
  return { execution, spans, from, to };
}

export function formatDuration(ms) {
  if (!Number.isFinite(ms)) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

// A JSON value as text, and whether it had to be cut to `limit` characters.
export function preview(value, limit) {
  const text = value === undefined ? "" : JSON.stringify(value, null, 2) ?? "";
  if (text.length <= limit) return { text, truncated: false, size: text.length };
  return { text: text.slice(0, limit), truncated: true, size: text.length };
}
