"""The RPC metrics: counted by the edge on every call, and by the malformed-request
guard on the calls it answers before the edge sees them."""

from __future__ import annotations

from customer_core.telemetry.tallies import FastCounter, FastGauge, FastHistogram

# Counted on every call: plain-attribute tallies, not prometheus_client's locked
# metrics (telemetry/tallies.py says why).
RPC_REQUESTS = FastCounter(
    "customer_grpc_requests", "RPCs handled, by method and status code.", ["method", "code"]
)
RPC_SECONDS = FastHistogram(
    "customer_grpc_request_duration_seconds",
    "RPC latency by method (for streams: the whole stream).",
    ["method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
# The codes the dashboards and alerts count as server errors. Their series start at 0 with
# the method's first call, so an error ratio reads 0 (not "No data") and the first error
# is seen by rate() (a series that appears at 1 has no increase).
SERVER_ERROR_CODES = ("INTERNAL", "UNKNOWN", "UNAVAILABLE", "DATA_LOSS")
RPC_IN_FLIGHT = FastGauge(
    "customer_grpc_in_flight", "RPCs and streams being served now.", ["method"]
)


def short_name(path: str) -> str:
    """The method label: `GetCustomer` for `/customer.v1.CustomerService/GetCustomer`."""
    return path.rsplit("/", 1)[-1]
