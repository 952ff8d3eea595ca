"""A notification the jobs record for a customer, waiting to be published."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Notification:
    id: uuid.UUID
    customer_id: uuid.UUID
    # reward_available, tier_reached or points_expiring
    reason: str
    subject: str
    points: int
    expire_time: datetime | None
    create_time: datetime
