"""Which family a named resource belongs to, for app callers' family scoping.

A customer never changes family (it is immutable), so a customer's family is
cached in memory for the life of the process; unknown ids are not cached, as
the customer may be created a moment later. Usernames can change hands, so
they are always looked up; so are members' roles, which can change.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict

from customer_core.context import Context
from customer_core.usecases import access

_CACHE_SIZE = 50_000


class FamilyResolver:
    def __init__(self, ctx: Context, size: int = _CACHE_SIZE) -> None:
        self._ctx = ctx
        self._size = size
        self._families: OrderedDict[uuid.UUID, uuid.UUID] = OrderedDict()

    async def of_customer(self, customer_id: uuid.UUID) -> uuid.UUID | None:
        family = self._families.get(customer_id)
        if family is not None:
            self._families.move_to_end(customer_id)
            return family
        family = await access.family_of_customer(self._ctx, customer_id)
        if family is not None:
            self._families[customer_id] = family
            if len(self._families) > self._size:
                self._families.popitem(last=False)
        return family

    async def of_username(self, username: str) -> uuid.UUID | None:
        return await access.family_of_username(self._ctx, username)

    async def member(self, customer_id: uuid.UUID) -> access.Member | None:
        return await access.member(self._ctx, customer_id)

    async def by_username(self, username: str) -> tuple[uuid.UUID, uuid.UUID] | None:
        return await access.customer_by_username(self._ctx, username)
