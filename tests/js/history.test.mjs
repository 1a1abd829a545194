// The dashboard's history model (static/history.js), run by `node --test tests/js`.
import assert from "node:assert/strict";
import test from "node:test";

import {
  formatDuration,
  preview,
  timeline,
} from "../../orchestration/functions/dashboard/static/history.js";

const t = (ms) => new Date(Date.UTC(2026, 11, 3, 12, 0, 0, ms)).toISOString();

test("activities, a timer and a sub-orchestration become spans with durations", () => {
  const events = [
    { EventType: "OrchestratorStarted", EventId: -1, Timestamp: t(0) },
    { EventType: "ExecutionStarted", EventId: -1, Timestamp: t(0), Name: "wf" },
    { EventType: "TaskScheduled", EventId: 0, Timestamp: t(10), Name: "a" },
    { EventType: "TaskCompleted", EventId: -1, Timestamp: t(110), TaskScheduledId: 0 },
    { EventType: "TimerCreated", EventId: 1, Timestamp: t(120), FireAt: t(620) },
    { EventType: "TimerFired", EventId: -1, Timestamp: t(630), TimerId: 1 },
    { EventType: "SubOrchestrationInstanceCreated", EventId: 2, Timestamp: t(640), Name: "child", InstanceId: "c-1" },
    { EventType: "SubOrchestrationInstanceFailed", EventId: -1, Timestamp: t(900), TaskScheduledId: 2, Failure: { errorType: "E", message: "m" } },
    { EventType: "EventRaised", EventId: -1, Timestamp: t(950), Name: "Go" },
    { EventType: "ExecutionCompleted", EventId: 3, Timestamp: t(1000), Status: "Failed" },
  ];
  const model = timeline(events, Date.parse(t(5000)));
  assert.equal(model.execution.name, "wf");
  assert.equal(model.execution.duration, 1000);
  assert.equal(model.execution.outcome, "Failed");
  const [activity, timer, child, raised] = model.spans;
  assert.deepEqual([activity.kind, activity.duration, activity.outcome], ["activity", 100, "Completed"]);
  assert.deepEqual([timer.kind, timer.duration, timer.outcome, timer.due], ["timer", 510, "Fired", Date.parse(t(620))]);
  assert.deepEqual([child.kind, child.instanceId, child.outcome], ["sub-orchestration", "c-1", "Failed"]);
  assert.equal(child.failure.errorType, "E");
  assert.deepEqual([raised.kind, raised.name, raised.duration], ["event", "Go", 0]);
  assert.equal(model.from, Date.parse(t(0)));
  assert.equal(model.to, Date.parse(t(1000)));
});

test("retries are numbered and marked; open work runs to now", () => {
  const events = [
    { EventType: "ExecutionStarted", EventId: -1, Timestamp: t(0), Name: "wf" },
    { EventType: "TaskScheduled", EventId: 0, Timestamp: t(0), Name: "flaky" },
    { EventType: "TaskFailed", EventId: -1, Timestamp: t(50), TaskScheduledId: 0, Failure: { errorType: "E", message: "1" } },
    { EventType: "TimerCreated", EventId: 1, Timestamp: t(50), FireAt: t(250) },
    { EventType: "TimerFired", EventId: -1, Timestamp: t(250), TimerId: 1 },
    { EventType: "TaskScheduled", EventId: 2, Timestamp: t(260), Name: "flaky" },
  ];
  const model = timeline(events, Date.parse(t(400)));
  const attempts = model.spans.filter((s) => s.kind === "activity");
  assert.deepEqual(attempts.map((s) => [s.attempt, s.retry, s.outcome]), [
    [1, false, "Failed"],
    [2, true, "Running"],
  ]);
  assert.equal(attempts[1].open, true);
  assert.equal(attempts[1].duration, 140);
  assert.equal(model.execution.open, true);
  assert.equal(model.execution.duration, 400);
});

test("an empty history has no spans", () => {
  const model = timeline([], 1000);
  assert.equal(model.execution, null);
  assert.deepEqual(model.spans, []);
});

test("durations read as people say them; large payloads are cut", () => {
  assert.equal(formatDuration(12), "12 ms");
  assert.equal(formatDuration(2500), "2.50 s");
  assert.equal(formatDuration(75_000), "1 min 15 s");
  assert.equal(formatDuration(3 * 3600_000 + 60_000), "3 h 1 min");
  const big = preview({ text: "x".repeat(50) }, 20);
  assert.equal(big.truncated, true);
  assert.equal(big.text.length, 20);
  assert.ok(big.size > 50);
  assert.deepEqual(preview(null, 20), { text: "null", truncated: false, size: 4 });
});
