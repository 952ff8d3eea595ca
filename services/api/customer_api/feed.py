"""One ActivityFeed stream: its subscriptions, their cursors, and its bounded outbox.

Resuming without a gap or a duplicate takes three steps, in this order:
1. follow the target's stream live (entries fanned out from now on are kept
   aside while the subscription starts);
2. read the replay window after the resume cursor (or just note the newest
   entry, for a live-only subscription), queueing what was missed;
3. release the entries kept aside, skipping any at or before the cursor.
Anything appended before step 2's read is in the replay; anything after it
comes through step 1; the cursor filter drops what both saw.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence

from customer_api.convert.streams import ack_to_pb, event_to_pb, pong_to_pb
from customer_api.flow import Outbox
from customer_api.hub import Hub
from customer_core.domain import names
from customer_core.errors import InvalidArgument, LimitExceeded
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.usecases import activity
from customer_core.usecases.activity import Entry, cursor_key

log = logging.getLogger(__name__)

REPLAY_CHUNK = 500
MAX_SUBSCRIPTION_ID = 128
BEHIND = (
    "this ActivityFeed stream fell more than {limit} messages behind and was ended; "
    "reconnect and subscribe again with resume_cursor set to the last cursor you received "
    "for each subscription"
)


class Subscription:
    def __init__(self, session: FeedSession, subscription_id: str, stream: str) -> None:
        self.session = session
        self.id = subscription_id
        self.stream = stream
        self._cursor: tuple[int, int] | None = None  # None while starting
        self._early: list[Entry] = []

    @property
    def outbox(self) -> Outbox[pb.ActivityFeedResponse]:
        return self.session.outbox

    def deliver(self, entries: Sequence[Entry]) -> None:
        """Entries fanned out by the hub, oldest first (may repeat ones already sent)."""
        if self._cursor is None:
            self._early.extend(entries)
            if len(self._early) > self.session.outbox.limit:
                self.session.outbox.close(LimitExceeded(self.session.behind))
            return
        outbox = self.session.outbox
        for e in entries:
            key = cursor_key(e.cursor)
            if key > self._cursor:
                self._cursor = key
                outbox.put(event_to_pb(self.id, e))

    def go_live(self, cursor: str) -> None:
        """Everything up to `cursor` was queued: release what arrived meanwhile."""
        self._cursor = cursor_key(cursor)
        early, self._early = self._early, []
        self.deliver(early)


class FeedSession:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        limit = hub.settings.queue_limit
        self.behind = BEHIND.format(limit=limit)
        self.outbox: Outbox[pb.ActivityFeedResponse] = Outbox(limit, self.behind)
        self.subs: dict[str, Subscription] = {}

    async def serve_requests(self, requests: AsyncIterator[pb.ActivityFeedRequest]) -> None:
        """Act on the client's messages; any error closes the stream with it."""
        try:
            async for request in requests:
                action = request.WhichOneof("action")
                if action == "subscribe":
                    await self.subscribe(request.subscribe)
                elif action == "unsubscribe":
                    self.unsubscribe(request.unsubscribe.subscription_id)
                elif action == "ping":
                    self.outbox.put(pong_to_pb(request.ping.nonce))
                else:
                    raise InvalidArgument("action", "set subscribe, unsubscribe or ping")
        except Exception as exc:
            self.outbox.close(exc)

    async def subscribe(self, m: pb.Subscribe) -> None:
        sub_id = m.subscription_id
        if not 1 <= len(sub_id) <= MAX_SUBSCRIPTION_ID:
            raise InvalidArgument(
                "subscribe.subscription_id", f"required, 1..{MAX_SUBSCRIPTION_ID} characters"
            )
        if sub_id in self.subs:
            raise InvalidArgument("subscribe.subscription_id", f"{sub_id!r} is already in use")
        if len(self.subs) >= self.hub.settings.max_subscriptions:
            raise LimitExceeded(
                f"subscribe: at most {self.hub.settings.max_subscriptions} subscriptions per stream"
            )
        stream = await self._stream_of(m)
        resume = m.resume_cursor
        if resume:
            try:
                cursor_key(resume)
            except ValueError:
                raise InvalidArgument(
                    "subscribe.resume_cursor", "must be a cursor from an ActivityEvent"
                ) from None
        sub = Subscription(self, sub_id, stream)
        self.subs[sub_id] = sub
        await self.hub.follow(sub)  # step 1: live entries are kept aside from here on
        ctx = self.hub.ctx
        if not resume:
            # Acknowledged once live: every entry after the ack reaches the client.
            sub.go_live(await activity.latest_cursor(ctx, stream))
            self.outbox.put(ack_to_pb(sub_id, True))
            return
        truncated = await activity.lost_after(ctx, stream, resume)
        await self.outbox.put_wait(ack_to_pb(sub_id, True, truncated))
        cursor = resume
        # step 2: the replay window after the cursor
        async for entries in activity.replay(ctx, stream, resume, REPLAY_CHUNK):
            for e in entries:
                await self.outbox.put_wait(event_to_pb(sub_id, e))
            cursor = entries[-1].cursor
        sub.go_live(cursor)  # step 3

    async def _stream_of(self, m: pb.Subscribe) -> str:
        target = m.WhichOneof("target")
        if target == "customer":
            cid = names.customer_id(m.customer, "subscribe.customer")
            return await activity.customer_feed(self.hub.ctx, cid)
        if target == "family":
            fid = names.family_id(m.family, "subscribe.family")
            return await activity.family_feed(self.hub.ctx, fid)
        raise InvalidArgument("subscribe.target", "set customer or family")

    def unsubscribe(self, sub_id: str) -> None:
        sub = self.subs.pop(sub_id, None)
        if sub is not None:
            self.hub.unfollow(sub)
        self.outbox.put(ack_to_pb(sub_id, False))

    def close(self) -> None:
        for sub in self.subs.values():
            self.hub.unfollow(sub)
        self.subs.clear()
