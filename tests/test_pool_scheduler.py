"""The pool's pure parts: the scheduler's decisions and the sweep expansion (table tests)."""

from __future__ import annotations

from typing import Any

import pytest

from invokeai_client import ValidationError
from invokeai_client.pool._member import learned_limit
from invokeai_client.pool.scheduler import Policy, ServerState, depth, plan
from invokeai_client.pool.variations import Variation, chunk_body, count, expand
from invokeai_client.types.batch import RUNS_RULE, ZIP_RULE

S = ServerState
P = Policy(lead_time=0.5, min_lead=1, max_lead=64, max_chunk=500)

PLAN_CASES: list[tuple[str, list[ServerState], int, Policy, dict[str, int]]] = [
    ("nothing pending", [S("a")], 0, P, {}),
    ("no server usable", [S("a", usable=False)], 10, P, {}),
    # Before any rate is known every server gets its first depth: 1 running + min lead 1.
    ("cold start fills each to depth", [S("a"), S("b")], 100, P, {"a": 2, "b": 2}),
    ("dead server gets nothing", [S("a"), S("b", usable=False)], 100, P, {"a": 2}),
    # depth = lead (rate * 0.5 s) + one refill (rate * 1 s): 10/s -> 5 + 10; 2/s -> 1 + 2.
    ("a faster server takes more", [S("f", rate=10.0), S("s", rate=2.0)], 100, P,
     {"f": 15, "s": 3}),
    ("only the gap to depth is sent", [S("f", rate=10.0, in_flight=4)], 100, P, {"f": 11}),
    ("a refill waits for room for a whole refill",
     [S("f", rate=10.0, in_flight=6), S("s", rate=2.0, in_flight=2)], 100, P, {}),
    ("the queue limit binds before a whole refill", [S("f", rate=10.0, in_flight=6, room=3)],
     100, P, {"f": 3}),
    ("never beyond the queue room", [S("f", rate=10.0, room=3)], 100, P, {"f": 3}),
    ("a full queue gets nothing", [S("f", rate=10.0, room=0)], 100, P, {}),
    ("lead capped by max_lead", [S("f", rate=1000.0)], 10_000, Policy(batch_time=0.01),
     {"f": 74}),
    ("one request never exceeds max_chunk", [S("f", rate=1000.0)], 10_000,
     Policy(lead_time=10, max_lead=5000, max_chunk=100), {"f": 100}),
    # Tail: 1 item left; the fast server (busy, 0.7 s to free) beats the idle slow one (1 s).
    # Tail: 1 item left; the full fast server frees a place in 1.6 s, the idle slow one
    # would need 2 s: the item waits for the fast one.
    ("tail waits for the faster server",
     [S("f", rate=10.0, in_flight=15), S("s", rate=0.5)], 1, P, {}),
    ("tail goes to the slow server when it finishes first",
     [S("f", rate=10.0, in_flight=15), S("s", rate=1.0)], 1, P, {"s": 1}),
    ("tail goes to the idle fast server",
     [S("f", rate=10.0), S("s", rate=1.0)], 3, P, {"f": 3}),
    ("tail split by finish time",
     [S("f", rate=4.0), S("s", rate=4.0, in_flight=2)], 3, P, {"f": 3}),
    ("unknown rate uses the pool's mean", [S("a", rate=10.0, in_flight=6), S("new")], 100, P,
     {"new": 15}),
    ("one variation goes where less work waits",
     [S("a", rate=2.0, backlog=6), S("b", rate=2.0, backlog=1)], 1, P, {"b": 1}),
    ("other clients' items count as work ahead, not against the depth",
     [S("a", rate=2.0, backlog=50)], 10, P, {"a": 3}),
    ("sum never exceeds pending", [S("a", rate=10.0), S("b", rate=10.0)], 7, P,
     {"a": 4, "b": 3}),
]


@pytest.mark.parametrize(
    ("servers", "pending", "policy", "expected"),
    [case[1:] for case in PLAN_CASES],
    ids=[case[0] for case in PLAN_CASES],
)
def test_plan(
    servers: list[ServerState], pending: int, policy: Policy, expected: dict[str, int]
) -> None:
    assert plan(servers, pending, policy) == expected


@pytest.mark.parametrize(
    ("state", "expected"),
    [(S("a"), 2), (S("a", rate=0.1), 2), (S("a", rate=4.0), 6), (S("a", rate=100.0), 150)],
)
def test_depth(state: ServerState, expected: int) -> None:
    assert depth(state, P, default_rate=1.0) == expected


def test_plan_over_time_keeps_every_server_busy_and_shallow() -> None:
    """Drive the scheduler with a tiny simulation: 3 servers at 1, 2 and 5 items/s, 400
    variations. Every server always has work while work is pending, and holds no more than
    its depth; items end where they finish first (the faster server takes more)."""
    rates = {"a": 1.0, "b": 2.0, "c": 5.0}
    in_flight = dict.fromkeys(rates, 0)
    done = dict.fromkeys(rates, 0)
    progress = dict.fromkeys(rates, 0.0)
    pending, tick = 400, 0.05
    idle_ticks = dict.fromkeys(rates, 0)
    for _ in range(100_000):
        states = [S(n, rate=rates[n], in_flight=in_flight[n]) for n in rates]
        for name, n in plan(states, pending, P).items():
            in_flight[name] += n
            pending -= n
        for name, rate in rates.items():
            assert in_flight[name] <= depth(S(name, rate=rate), P, 1.0)
            if in_flight[name] == 0:
                idle_ticks[name] += pending > 0
                continue
            progress[name] += rate * tick
            while progress[name] >= 1 and in_flight[name]:
                progress[name] -= 1
                in_flight[name] -= 1
                done[name] += 1
        if pending == 0 and not any(in_flight.values()):
            break
    assert sum(done.values()) == 400
    assert idle_ticks == dict.fromkeys(rates, 0)
    assert done["c"] > done["b"] > done["a"]


def _datum(node: str, field: str, items: list[Any]) -> dict[str, Any]:
    return {"node_path": node, "field_name": field, "items": items}


EXPAND_CASES: list[tuple[str, list[list[dict[str, Any]]] | None, int, list[tuple[Any, ...]]]] = [
    ("no data, runs", None, 3, [(), (), ()]),
    ("one datum", [[_datum("n", "seed", [1, 2])]], 1, [(1,), (2,)]),
    ("zipped group", [[_datum("n", "seed", [1, 2]), _datum("n", "p", ["a", "b"])]], 1,
     [(1, "a"), (2, "b")]),
    # InvokeAI: groups multiply with the first outermost; runs is the outermost loop.
    ("product, first group outermost",
     [[_datum("n", "seed", [1, 2])], [_datum("m", "p", ["a", "b"])]], 1,
     [(1, "a"), (1, "b"), (2, "a"), (2, "b")]),
    ("runs outermost", [[_datum("n", "seed", [1, 2]), _datum("n", "p", [10, 20])]], 2,
     [(1, 10), (2, 20), (1, 10), (2, 20)]),
]


@pytest.mark.parametrize(
    ("groups", "runs", "expected"),
    [case[1:] for case in EXPAND_CASES],
    ids=[case[0] for case in EXPAND_CASES],
)
def test_expand_follows_the_servers_order(
    groups: list[list[dict[str, Any]]] | None, runs: int, expected: list[tuple[Any, ...]]
) -> None:
    result = expand(groups, runs)
    assert [v.values for v in result.variations] == expected
    assert [v.index for v in result.variations] == list(range(len(expected)))
    assert count(groups, runs) == len(expected)


@pytest.mark.parametrize(
    ("groups", "runs", "rule"),
    [
        ([[_datum("n", "a", [1, 2]), _datum("n", "b", [1])]], 1, ZIP_RULE),
        (None, 0, RUNS_RULE),
    ],
)
def test_expand_refuses(groups: Any, runs: int, rule: str) -> None:
    with pytest.raises(ValidationError) as info:
        expand(groups, runs)
    assert info.value.rule == rule


def test_chunk_body_makes_one_zipped_group() -> None:
    base = {"batch": {"graph": {"nodes": {}}, "runs": 4, "data": [["x"]], "workflow": {}},
            "prepend": False}
    fields = (("n", "seed"), ("m", "p"))
    chunk = [Variation(5, (1, "a")), Variation(6, (2, "b"))]
    body = chunk_body(base, fields, chunk, "bid")
    assert body["batch"]["data"] == [[_datum("n", "seed", [1, 2]), _datum("m", "p", ["a", "b"])]]
    assert body["batch"]["runs"] == 1
    assert body["batch"]["batch_id"] == "bid"
    assert base["batch"]["batch_id" if False else "runs"] == 4  # base untouched
    bare = chunk_body(base, (), [Variation(0, ()), Variation(1, ())], "b2")
    assert "data" not in bare["batch"]
    assert bare["batch"]["runs"] == 2


@pytest.mark.parametrize(
    ("known", "pending", "cut", "learned"),
    [
        # The queue drained between the cut and the probe that learns from it: the limit
        # must not be learned as 0 (the server would look full for good and the job hang).
        (None, 0, 0, 1),
        (None, 0, 6, 6),  # the cut showed 6 of ours waiting plus nothing that fitted
        (None, 7, 0, 7),  # pending now is never above the limit
        (6, 7, 0, 7),  # a learned limit only grows
        (7, 2, 3, 7),
    ],
)
def test_a_queue_limit_learned_from_cuts_is_a_lower_bound_of_at_least_one(
    known: int | None, pending: int, cut: int, learned: int
) -> None:
    assert learned_limit(known, pending, cut) == learned
