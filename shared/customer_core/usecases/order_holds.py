"""What the end of an order does to its reward redemptions, in the consumer's batch.

A completed or cancelled order ends a child's redemptions still waiting for a
parent's approval; a completion captures the order's reward hold (unless the order
is already cancelled), a cancellation releases it or refunds a captured one. Both
run after the batch's account lock and before any other redemption row is touched
(docs/wallet.md, Concurrency). `changed` gathers who must hear that their points moved.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from customer_core import notices
from customer_core.db import Conn
from customer_core.db import redemptions as redemptions_db
from customer_core.domain.order_events import Change, OrderState


async def end_pending(
    conn: Conn, changes: Sequence[Change], changed: dict[uuid.UUID, set[str]]
) -> None:
    # After the batch's account lock, before any redemption row is released or
    # captured: ApproveRedemption takes account, approval, redemption in that order.
    finished = sorted({c.event.order_id for c in changes if c.completed or c.cancelled})
    for customer_id in await redemptions_db.end_pending_for_orders(conn, finished):
        changed.setdefault(customer_id, set()).add(notices.POINTS)


async def settle_holds(
    conn: Conn,
    changes: Sequence[Change],
    states: Mapping[str, OrderState],
    changed: dict[uuid.UUID, set[str]],
) -> None:
    # A completion captures the order's reward hold, unless the order is
    # already cancelled; a cancellation releases it (or refunds a captured one).
    capture = sorted(
        {
            c.event.order_id
            for c in changes
            if c.completed and states[c.event.order_id].cancelled_at is None
        }
    )
    cancelled = sorted({c.event.order_id for c in changes if c.cancelled})
    for r in await redemptions_db.capture_holds_for_order(conn, capture):
        changed.setdefault(r.customer_id, set()).add(notices.POINTS)
    if cancelled:
        for r in await redemptions_db.release_holds_for_order(conn, cancelled, "order cancelled"):
            changed.setdefault(r.customer_id, set()).add(notices.POINTS)
