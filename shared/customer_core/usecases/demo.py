"""Demo data for `customer-service dev`: two families, created once.

Every family and member has a fixed external id, so seeding again (the next
`make run`) finds them and creates nothing. Favorites and rewards are seeded
by the loyalty area.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from customer_core.context import Context
from customer_core.db import Conn
from customer_core.db import customers as customers_db
from customer_core.db import families as families_db
from customer_core.db.idempotency import lock_key
from customer_core.domain.customers import Customer, Dietary, Preferences, Role
from customer_core.errors import AlreadyExists
from customer_core.usecases.wallet import seed_demo_wallet


@dataclass(frozen=True)
class DemoMember:
    external_id: str
    username: str
    display_name: str
    role: Role
    preferences: Preferences
    dietary: Dietary = field(default_factory=Dietary)
    email: str | None = None


@dataclass(frozen=True)
class DemoFamily:
    external_id: str
    display_name: str
    members: tuple[DemoMember, ...]


DEMO_FAMILIES = (
    DemoFamily(
        "demo-family-rivera",
        "Rivera",
        (
            DemoMember(
                "demo-ana-rivera",
                "ana.rivera",
                "Ana Rivera",
                Role.OWNER,
                Preferences(
                    milk="oat",
                    size="large",
                    temperature="hot",
                    sweetness="light",
                    caffeine="regular",
                    extra_shots=1,
                ),
                Dietary(frozenset({"dairy_free"}), ("peanuts",)),
                "ana.rivera@example.com",
            ),
            DemoMember(
                "demo-marco-rivera",
                "marco.rivera",
                "Marco Rivera",
                Role.ADULT,
                Preferences(
                    milk="whole", size="medium", temperature="iced", caffeine="extra", extra_shots=2
                ),
            ),
            DemoMember(
                "demo-sofia-rivera",
                "sofia.rivera",
                "Sofia Rivera",
                Role.CHILD,
                Preferences(
                    milk="almond",
                    size="small",
                    temperature="warm",
                    caffeine="decaf",
                    sweetness="regular",
                ),
                Dietary(frozenset({"nut_free", "vegetarian"}), ("tree nuts",)),
            ),
        ),
    ),
    DemoFamily(
        "demo-family-chen",
        "Chen",
        (
            DemoMember(
                "demo-wei-chen",
                "wei.chen",
                "Wei Chen",
                Role.OWNER,
                Preferences(
                    milk="none",
                    size="medium",
                    temperature="hot",
                    sweetness="none",
                    caffeine="extra",
                ),
                Dietary(frozenset({"lactose_free"})),
                "wei.chen@example.com",
            ),
            DemoMember(
                "demo-lin-chen",
                "lin.chen",
                "Lin Chen",
                Role.ADULT,
                Preferences(milk="soy", size="large", temperature="iced", sweetness="light"),
                Dietary(frozenset({"vegan", "gluten_free"}), ("sesame",)),
            ),
        ),
    ),
)


async def _seed_family(conn: Conn, demo: DemoFamily) -> tuple[int, int]:
    created_families = created_members = 0
    family = await families_db.fetch_family_by_external_id(conn, demo.external_id)
    if family is None:
        family = await families_db.insert_family(
            conn, uuid.uuid4(), demo.display_name, demo.external_id
        )
        created_families = 1
    for m in demo.members:
        if await customers_db.fetch_customer_by_external_id(conn, m.external_id):
            continue
        customer = Customer(
            id=uuid.uuid4(),
            family_id=family.id,
            username=m.username,
            display_name=m.display_name,
            email=m.email,
            role=m.role,
            preferences=m.preferences,
            dietary=m.dietary,
            external_id=m.external_id,
        )
        try:
            await customers_db.insert_customer(conn, customer)
        except AlreadyExists:
            # Someone already uses the demo username; the demo does without them.
            continue
        created_members += 1
    return created_families, created_members


async def seed_demo(ctx: Context) -> str:
    """Create the demo families once; returns a one-line summary."""
    families = members = 0
    async with ctx.pool.acquire() as conn, conn.transaction():
        # Two `dev` processes seeding at once would otherwise race on the same ids.
        await lock_key(conn, "demo-seed")
        for demo in DEMO_FAMILIES:
            f, m = await _seed_family(conn, demo)
            families += f
            members += m
    names = " and ".join(f.display_name for f in DEMO_FAMILIES)
    await seed_demo_wallet(ctx)  # the Rivera family's pooled wallet (idempotent)
    if not families and not members:
        return f"the {names} families are already there"
    return f"created {families} families ({names}) and {members} members"
