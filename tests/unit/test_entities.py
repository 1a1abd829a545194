"""The entity core without storage: ids, ordering, batches, and the orchestrator's side."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestration.core import OrchestrationSession
from orchestration.core.actions import SendEvent
from orchestration.core.entities import (
    ENTITY_OPERATION,
    REORDER_WINDOW,
    DurableEntityContext,
    Entity,
    EntityBatch,
    EntityId,
    EntitySnapshot,
    InvalidEntityIdError,
    OperationRequest,
    entity_id_of,
    is_entity_instance,
    order,
    read_response,
    response_event,
    response_payload,
)
from orchestration.core.errors import TaskFailedError
from orchestration.core.history import (
    EventRaised,
    ExecutionStarted,
    FailureDetails,
    OrchestratorStarted,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def request(
    sender: str | None,
    position: int | None,
    op: str = "add",
    value: Any = 1,
    sent_at: datetime = T0,
    previous_at: datetime | None = None,
) -> OperationRequest:
    return OperationRequest(
        id=f"{sender}:{position}:{op}:{value}",
        operation=op,
        input=str(value),
        sender=sender,
        position=position,
        sent_at=sent_at,
        previous_at=previous_at,
    )


# -- ids ---------------------------------------------------------------------------------
def test_entity_ids_have_durable_functions_string_form() -> None:
    entity = EntityId("Counter", "Key-1")
    assert str(entity) == "@counter@Key-1" == EntityId.get_scheduler_id(entity)
    assert EntityId.get_entity_id("@counter@Key-1") == EntityId("counter", "Key-1")
    assert entity_id_of("@cart@a@b") == EntityId("cart", "a@b")  # the key may hold '@'
    assert (
        is_entity_instance("@x@")
        and not is_entity_instance("plain")
        and not is_entity_instance("@@k")
    )
    for bad in ("", "a@b"):
        with pytest.raises(InvalidEntityIdError):
            EntityId(bad, "k")
    with pytest.raises(InvalidEntityIdError):
        entity_id_of("not-an-entity")


def test_requests_and_snapshots_round_trip_through_json() -> None:
    call = OperationRequest("r1", "get", None, signal=False, reply_to="orch", reply_execution="x",
                            sender="orch:x", position=3, sent_at=T0, previous_at=T0)  # fmt: skip
    assert OperationRequest.from_json(call.to_json()) == call
    assert OperationRequest.from_json(call.to_json()).as_possible_duplicate().possible_duplicate
    snapshot = EntitySnapshot(
        True, "5", {"s": (2, T0, (1,)), "t": (1, T0, ())}, [call], {"@a@b": (1, T0)}, 7
    )
    again = EntitySnapshot.from_json(snapshot.to_json())
    assert again == snapshot
    with pytest.raises(ValueError):
        OperationRequest.from_json('{"op": "no id"}')
    with pytest.raises(ValueError):
        OperationRequest.from_json("[1]")


# -- ordering ----------------------------------------------------------------------------
def test_each_senders_requests_run_in_the_order_sent_whatever_the_arrival_order() -> None:
    rng = random.Random(7)
    for _ in range(50):
        sent = [request(s, p, value=p) for s in ("a", "b", "c") for p in range(6)]
        arrived = sent[:]
        rng.shuffle(arrived)
        snapshot = EntitySnapshot()
        ran: list[OperationRequest] = []
        # in three deliveries, as batches would come
        for part in (arrived[:5], arrived[5:11], arrived[11:]):
            ran += order(snapshot, part, T0 + timedelta(seconds=1))
        assert snapshot.early == []
        assert sorted(ran, key=lambda r: r.id) == sorted(sent, key=lambda r: r.id)
        for sender in "abc":
            assert [r.position for r in ran if r.sender == sender] == list(range(6))


def test_copies_of_a_position_are_dropped_and_requests_without_sender_keep_arrival_order() -> None:
    snapshot = EntitySnapshot()
    first = order(snapshot, [request("a", 0), request(None, None, value=1), request("a", 0),
                             request(None, None, value=2)], T0)  # fmt: skip
    assert [(r.sender, r.input) for r in first] == [("a", "1"), (None, "1"), (None, "2")]
    assert order(snapshot, [request("a", 0)], T0) == []  # ran before
    held = order(snapshot, [request("a", 2), request("a", 2)], T0)
    assert held == [] and len(snapshot.early) == 1


def test_a_held_request_runs_once_its_window_has_passed_and_senders_are_forgotten() -> None:
    snapshot = EntitySnapshot()
    assert order(snapshot, [request("a", 1)], T0 + timedelta(seconds=1)) == []
    assert snapshot.next_release() == T0 + REORDER_WINDOW
    late = T0 + REORDER_WINDOW + timedelta(seconds=1)
    assert [r.position for r in order(snapshot, [], late)] == [1]
    # The predecessor, arriving after all, runs (late, out of order), once.
    assert [r.position for r in order(snapshot, [request("a", 0)], late)] == [0]
    assert order(snapshot, [request("a", 0), request("a", 1)], late) == []
    # Quiet for longer than the window, the sender is forgotten...
    much_later = late + REORDER_WINDOW * 2
    order(snapshot, [], much_later)
    assert "a" not in snapshot.senders
    # ...and its next request, whose predecessor is that old, runs at once.
    nxt = request("a", 2, sent_at=much_later, previous_at=late)
    assert order(snapshot, [nxt], much_later) == [nxt]
    # An unknown sender's later request whose predecessor is recent waits for it.
    early = request("b", 1, sent_at=much_later, previous_at=much_later)
    assert order(snapshot, [early], much_later) == []


# -- batches -----------------------------------------------------------------------------
def counter(context: DurableEntityContext) -> None:
    value = context.get_state(lambda: 0)
    if context.operation_name == "add":
        value += context.get_input()
        context.set_state(value)
        if value >= 10:
            context.signal_entity(EntityId("alarm", context.entity_key), "ring", value)
    elif context.operation_name == "get":
        context.set_result(value)
    elif context.operation_name == "fail":
        context.set_state(-1)
        context.signal_entity(EntityId("alarm", "x"), "ring", -1)
        raise RuntimeError("refused")
    elif context.operation_name == "delete":
        context.destruct_on_exit()


def call(op: str, value: Any = None, rid: str = "r") -> OperationRequest:
    return OperationRequest(rid, op, None if value is None else str(value), signal=False,
                            reply_to="caller", reply_execution="x1")  # fmt: skip


def test_a_batch_runs_operations_in_turn_and_answers_calls() -> None:
    batch = EntityBatch(EntityId("Counter", "k"), counter)
    snapshot = EntitySnapshot()
    outcome = batch.run(
        snapshot, [call("add", 4, "r1"), call("add", 7, "r2"), call("get", rid="r3")], T0
    )
    assert snapshot == EntitySnapshot()  # the input is not changed
    assert outcome.snapshot.exists and outcome.snapshot.state == "11"
    answers = {
        m.event_name: read_response(m.input) for m in outcome.messages if m.instance_id == "caller"
    }
    assert answers[response_event("r3")] == (11, None)
    assert all(m.execution_id == "x1" for m in outcome.messages if m.instance_id == "caller")
    signals = [m for m in outcome.messages if m.event_name == ENTITY_OPERATION]
    assert [m.instance_id for m in signals] == ["@alarm@k"]
    ring = OperationRequest.from_json(signals[0].input)
    assert (ring.operation, ring.sender, ring.position, ring.input) == (
        "ring",
        "@counter@k",
        0,
        "11",
    )
    assert outcome.snapshot.positions["@alarm@k"][0] == 1
    assert batch.progress > 0


def test_a_raising_operation_is_rolled_back_with_its_signals_and_the_rest_go_on() -> None:
    batch = EntityBatch(EntityId("Counter", "k"), counter)
    outcome = batch.run(
        EntitySnapshot(), [call("add", 2, "a"), call("fail", rid="b"), call("get", rid="c")], T0
    )
    failed = [o for o in outcome.outcomes if o.failure is not None]
    assert [o.request.id for o in failed] == ["b"] and failed[
        0
    ].failure.error_type == "RuntimeError"
    assert outcome.snapshot.state == "2"
    assert not any(m.event_name == ENTITY_OPERATION for m in outcome.messages)
    _, failure = read_response(
        next(m.input for m in outcome.messages if m.event_name == response_event("b"))
    )
    assert failure is not None and failure.message == "refused"


def test_destruct_deletes_the_state_and_an_unknown_entity_fails_each_call() -> None:
    batch = EntityBatch(EntityId("Counter", "k"), Entity.create(counter))
    outcome = batch.run(EntitySnapshot(True, "5"), [call("delete")], T0)
    assert not outcome.snapshot.exists and outcome.snapshot.state is None
    missing = EntityBatch(EntityId("Nobody", "k"), None).run(EntitySnapshot(), [call("get")], T0)
    assert missing.outcomes[0].failure is not None
    assert "No entity named 'Nobody'" in missing.outcomes[0].failure.message


def test_state_that_is_not_json_fails_the_operation() -> None:
    def bad(context: DurableEntityContext) -> None:
        context.set_state(object())

    outcome = EntityBatch(EntityId("Bad", "k"), bad).run(EntitySnapshot(), [call("x")], T0)
    assert outcome.outcomes[0].failure is not None and not outcome.snapshot.exists


def test_answers_carry_a_result_or_a_failure() -> None:
    assert read_response(response_payload('"ok"')) == ("ok", None)
    failure = FailureDetails("E", "m")
    assert read_response(response_payload(failure=failure)) == (None, failure)


# -- the orchestrator's side --------------------------------------------------------------
def orchestrator(ctx: Any) -> Any:
    target = EntityId("Counter", "k")
    ctx.signal_entity(target, "add", 1)
    ctx.signal_entity(target, "add", 2)
    first = yield ctx.call_entity(target, "get")
    try:
        yield ctx.call_entity(target, "fail")
    except TaskFailedError as error:
        return [first, error.failure.message]
    return [first, None]


def start(session: OrchestrationSession) -> Any:
    events = [
        OrchestratorStarted(-1, T0),
        ExecutionStarted(-1, T0, "o", "orch", None, execution_id="x1"),
    ]
    return session.step(events)


def answer(request_json: str, payload: str) -> EventRaised:
    request = OperationRequest.from_json(request_json)
    return EventRaised(-1, T0, response_event(request.id), payload)


def test_calls_and_signals_become_ordered_requests_and_answers_resume_the_orchestrator() -> None:
    session = OrchestrationSession(lambda name: orchestrator, "orch")
    result = start(session)
    sends = [a for a in result.actions if isinstance(a, SendEvent)]
    assert [a.instance_id for a in sends] == ["@counter@k"] * 3
    requests = [OperationRequest.from_json(a.input) for a in sends]
    assert [(r.operation, r.position, r.signal) for r in requests] == [
        ("add", 0, True),
        ("add", 1, True),
        ("get", 2, False),
    ]
    assert requests[2].reply_to == "orch" and requests[2].reply_execution == "x1"
    assert requests[1].previous_at == T0 and requests[0].previous_at is None
    assert requests[2].id == "orch:x1:event:2"  # the id of the message that carries it
    # A repair sends again the signals and the unanswered call, marked as possible copies.
    resend = session.entity_requests_to_resend()
    assert len(resend) == 3 and all(
        OperationRequest.from_json(a.input).possible_duplicate for a in resend
    )
    result = session.step(
        [OrchestratorStarted(-1, T0), answer(sends[2].input, response_payload("3"))]
    )
    fail_request = next(a for a in result.actions if isinstance(a, SendEvent))
    assert len(session.entity_requests_to_resend()) == 3  # the answered call is not sent again
    failure = FailureDetails("RuntimeError", "refused")
    result = session.step(
        [OrchestratorStarted(-1, T0), answer(fail_request.input, response_payload(failure=failure))]
    )
    assert result.output == '[3, "refused"]' or result.output == '[3,"refused"]'


def test_replaying_entity_requests_is_deterministic() -> None:
    session = OrchestrationSession(lambda name: orchestrator, "orch")
    first = start(session)
    history = list(first.new_events)
    again = OrchestrationSession(lambda name: orchestrator, "orch").replay(history)
    assert again.status.value == "Running"
    assert [a.input for a in again.entity_requests_to_resend()] == [
        a.input for a in session.entity_requests_to_resend()
    ]


def test_a_refused_request_fails_without_running_and_takes_its_turn() -> None:
    batch = EntityBatch(EntityId("Counter", "k"), counter)
    failure = FailureDetails("PoisonMessageError", "gave up")
    outcome = batch.run(
        EntitySnapshot(), [call("add", 2, "a"), call("add", 5, "b")], T0, {"b": failure}
    )
    assert outcome.snapshot.state == "2"
    answer_b = next(m.input for m in outcome.messages if m.event_name == response_event("b"))
    assert read_response(answer_b) == (None, failure)


def test_a_steps_requests_to_one_entity_travel_in_one_message_in_order() -> None:
    from orchestration.core.entities import ENTITY_OPERATIONS, requests_of
    from orchestration.core.outbox import DeliverEvent, Sender, outgoing

    session = OrchestrationSession(lambda name: orchestrator, "orch")
    result = start(session)
    found = outgoing(Sender("orch", "o", "x1"), result.actions, T0)
    delivered = [item for item in found if isinstance(item, DeliverEvent)]
    assert len(delivered) == 1 and delivered[0].instance_id == "@counter@k"
    event = delivered[0].event
    assert isinstance(event, EventRaised) and event.name == ENTITY_OPERATIONS
    carried = requests_of(event.name, event.input)
    assert [(r.operation, r.position) for r in carried] == [("add", 0), ("add", 1), ("get", 2)]
    assert delivered[0].message_id == "orch:x1:event:0-2"
    for bad in ("[]", "{}", "nope", "[1]"):
        with pytest.raises(ValueError):
            requests_of(ENTITY_OPERATIONS, bad)


def test_an_entitys_signals_to_one_entity_go_in_one_message() -> None:
    from orchestration.core.entities import ENTITY_OPERATIONS, requests_of

    def fan(context: DurableEntityContext) -> None:
        for i in range(3):
            context.signal_entity(EntityId("other", "a"), "add", i)
        context.signal_entity(EntityId("other", "b"), "add", 9)

    outcome = EntityBatch(EntityId("Fan", "k"), fan).run(EntitySnapshot(), [call("go")], T0)
    signals = {m.instance_id: m for m in outcome.messages if m.instance_id.startswith("@other")}
    assert signals["@other@a"].event_name == ENTITY_OPERATIONS
    assert signals["@other@b"].event_name == ENTITY_OPERATION
    carried = requests_of(signals["@other@a"].event_name, signals["@other@a"].input)
    assert [r.position for r in carried] == [0, 1, 2] and len({r.id for r in carried}) == 3
