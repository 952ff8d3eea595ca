"""The scope table against the proto: every RPC has a row, and the rows say what
the design says each caller kind may do."""

from __future__ import annotations

from pathlib import Path

import pytest

from customer_api.security.scopes import (
    ADULT,
    CHILD,
    FAMILY_ACCOUNT,
    FAMILY_REACH,
    OWN_REACH,
    OWNER,
    SCOPES,
    Rule,
    Target,
)
from customer_api.security.tokens import APP, OPERATOR, ORDER_SERVICE
from customer_api.servicers.base import SERVICE
from customer_core.pb.customer.v1 import customer_pb2 as pb

RPCS = {m.name: m for m in SERVICE.methods}


def test_every_rpc_has_exactly_one_row() -> None:
    assert set(SCOPES) == set(RPCS)


def test_operators_may_call_everything() -> None:
    assert all(OPERATOR in rule.kinds for rule in SCOPES.values())


def test_the_order_service_gets_its_hot_path_and_only_reads_besides() -> None:
    allowed = {m for m, rule in SCOPES.items() if ORDER_SERVICE in rule.kinds}
    hot_path = {
        "ValidateCustomer",
        "GetOrderContext",
        "RedeemReward",
        "ReverseRedemption",
        "QuoteRedemption",
    }
    assert hot_path <= allowed
    writes = {m for m, rule in SCOPES.items() if rule.effects}
    assert allowed & writes == {"RedeemReward", "ReverseRedemption"}


@pytest.mark.parametrize(
    "method",
    [
        "AdjustPoints",
        "ImportCustomers",
        "DeleteCustomer",
        "CreateFamily",
        "RedeemReward",
        "ReverseRedemption",
        "ValidateCustomer",
        "GetOrderContext",
    ],
)
def test_apps_cannot_call_operator_or_order_service_rpcs(method: str) -> None:
    assert APP not in SCOPES[method].kinds


def test_every_rpc_open_to_apps_names_the_field_that_scopes_it() -> None:
    for method, rule in SCOPES.items():
        if APP not in rule.kinds or method == "HealthCheck":
            continue
        assert rule.target is not None and rule.field, method
        if rule.target in (Target.CUSTOMER_KEY, Target.SUBSCRIPTION):
            continue
        message = getattr(pb, RPCS[method].input_type.name)
        *parents, last = rule.field.split(".")
        desc = message.DESCRIPTOR
        for part in parents:
            desc = desc.fields_by_name[part].message_type
        assert last in desc.fields_by_name, f"{method}: no field {rule.field}"


def test_every_call_taking_an_idempotency_key_is_audited() -> None:
    for method, rule in SCOPES.items():
        fields = getattr(pb, RPCS[method].input_type.name).DESCRIPTOR.fields_by_name
        if "idempotency_key" in fields:
            assert rule.effects, method


def test_a_child_reaches_only_itself_and_only_the_owner_changes_the_wallet() -> None:
    for method, rule in SCOPES.items():
        assert rule.reach(CHILD) in (None, OWN_REACH), method
        if rule.reach(CHILD) is not None:
            assert not rule.effects, f"{method}: a child only reads"
    assert {m for m, r in SCOPES.items() if r.reach(ADULT) is None and r.reach(OWNER)} == {
        "SetFamilyWallet"
    }
    assert SCOPES["UpdateCustomer"].sets_role and SCOPES["CreateCustomer"].sets_role


def test_every_field_saying_who_acts_is_taken_from_the_token() -> None:
    actors = {
        (m, f.name)
        for m, desc in RPCS.items()
        for f in getattr(pb, desc.input_type.name).DESCRIPTOR.fields
        if f.name in ("approver", "requested_by", "set_by")
    }
    assert actors == {(m, r.actor) for m, r in SCOPES.items() if r.actor}


def _doc_row(method: str, rule: Rule) -> str:
    if method == "HealthCheck":
        return f"| {method} | everyone (open) |  |  |  |  |  |  |  |"
    reach = {FAMILY_REACH: "family", OWN_REACH: "self", None: ""}
    cells = [reach[rule.reach(role)] for role in (OWNER, ADULT, CHILD, FAMILY_ACCOUNT)]
    scoped = ""
    if rule.field:
        scoped = {
            Target.CUSTOMER_KEY: "`name` or `username`",
            Target.SUBSCRIPTION: "each `subscribe.customer` / `subscribe.family`",
        }.get(rule.target, f"`{rule.field}`")  # type: ignore[arg-type]
        scoped += " (optional)" if rule.optional else ""
    acts = "role: owner only" if rule.sets_role else (f"`{rule.actor}`" if rule.actor else "")
    return (
        f"| {method} | {', '.join(sorted(rule.services))} | {' | '.join(cells)} | {scoped} "
        f"| {acts} | {'yes' if rule.effects else ''} |"
    )


def test_the_security_doc_shows_the_table_as_it_is() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "security.md").read_text()
    missing = [m for m, rule in SCOPES.items() if _doc_row(m, rule) not in doc]
    assert missing == []
