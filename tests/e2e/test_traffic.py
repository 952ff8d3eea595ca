"""Realistic traffic through every process; the end state equals the model's, exactly."""

from __future__ import annotations

from customer_core.pb.customer.v1 import customer_pb2_grpc
from tests.support.e2e_checks import converge, database_problems, dead_lettered, wait_lag_zero
from tests.support.e2e_simulator import Simulator
from tests.support.e2e_stack import E2EStack, dsn


async def test_orders_duplicates_reordering_and_poison_end_as_the_model_predicts(
    e2e: E2EStack, sim: Simulator, stub: customer_pb2_grpc.CustomerServiceStub
) -> None:
    await sim.create_members(families=6, per_family=3)
    await sim.send_poison()
    await sim.run(orders=150, concurrency=6)

    await converge(stub, sim.model)
    assert await database_problems(dsn(e2e), sim.model) == []
    await wait_lag_zero(e2e)
    assert sim.tally.poison <= await dead_lettered(e2e.brokers, "customer.dlq")
    assert not sim.tally.errors, f"the Order Service saw errors: {sim.tally.errors}"
    assert sim.tally.duplicates > 0
