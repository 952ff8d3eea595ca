"""Favorites and the usual order through a real gRPC channel."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc
from tests.integration.loyalty.conftest import NewCustomer

Stub = customer_pb2_grpc.CustomerServiceStub


def latte(
    drink: str = "latte", syrups: tuple[str, ...] = ("vanilla",), **kw: object
) -> pb.Favorite:
    return pb.Favorite(
        drink_id=drink,
        drink_name=drink.title(),
        customization=pb.Customization(
            size=pb.DRINK_SIZE_LARGE, milk=pb.MILK_TYPE_OAT, shots=2, syrups=list(syrups), **kw
        ),
    )


async def add(api: Stub, cid: uuid.UUID, fav: pb.Favorite, key: str = "") -> pb.Favorite:
    return await api.AddFavorite(
        pb.AddFavoriteRequest(parent=f"customers/{cid}", favorite=fav, idempotency_key=key)
    )


async def status_of(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value.code()


async def test_add_list_and_duplicates(api: Stub, new_customer: NewCustomer) -> None:
    cid = await new_customer()
    first = await add(api, cid, latte(syrups=("Vanilla", "caramel")))
    assert first.name.startswith(f"customers/{cid}/favorites/") and first.position == 0
    assert list(first.customization.syrups) == ["Vanilla", "caramel"]
    second = await add(api, cid, latte("mocha"))
    assert second.position == 1
    # Same drink, same customisation written differently: a duplicate.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await add(api, cid, latte(syrups=(" caramel", "VANILLA ")))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    # A different customisation of the same drink is a new favorite.
    await add(api, cid, latte(syrups=("caramel",)))
    listed = await api.ListFavorites(pb.ListFavoritesRequest(parent=f"customers/{cid}"))
    assert [f.drink_id for f in listed.favorites] == ["latte", "mocha", "latte"]
    assert [f.position for f in listed.favorites] == [0, 1, 2]


@pytest.mark.parametrize(
    ("favorite", "field"),
    [
        (pb.Favorite(drink_name="Latte"), "favorite.drink_id"),
        (pb.Favorite(drink_id="latte"), "favorite.drink_name"),
        (latte(syrups=("a", "b", "c", "d", "e", "f")), "favorite.customization.syrups"),
        (latte(syrups=("x" * 33,)), "favorite.customization.syrups[0]"),
        (latte(notes="n" * 201), "favorite.customization.notes"),
        (
            pb.Favorite(drink_id="l", drink_name="L", customization=pb.Customization(shots=7)),
            "favorite.customization.shots",
        ),
        (
            pb.Favorite(drink_id="l", drink_name="L", customization=pb.Customization(milk=99)),
            "favorite.customization.milk",
        ),
    ],
)
async def test_bad_favorites_name_the_field(
    api: Stub, new_customer: NewCustomer, favorite: pb.Favorite, field: str
) -> None:
    cid = await new_customer()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await add(api, cid, favorite)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith(f"{field}:")


async def test_unknown_customer_and_bad_names(api: Stub) -> None:
    assert await status_of(add(api, uuid.uuid4(), latte())) == grpc.StatusCode.NOT_FOUND
    bad = api.AddFavorite(pb.AddFavoriteRequest(parent="customers/nope", favorite=latte()))
    assert await status_of(bad) == grpc.StatusCode.INVALID_ARGUMENT
    gone = api.RemoveFavorite(pb.RemoveFavoriteRequest(name=f"customers/{uuid.uuid4()}"))
    assert await status_of(gone) == grpc.StatusCode.INVALID_ARGUMENT


async def test_limit_holds_under_concurrent_adds(api: Stub, new_customer: NewCustomer) -> None:
    cid = await new_customer()
    results = await asyncio.gather(
        *(add(api, cid, latte(f"drink-{i}")) for i in range(60)), return_exceptions=True
    )
    ok = [r for r in results if isinstance(r, pb.Favorite)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(ok) == 50
    assert {e.code() for e in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert "50" in refused[0].details()
    assert sorted(f.position for f in ok) == list(range(50))


async def test_update_move_and_remove_keep_positions_dense(
    api: Stub, new_customer: NewCustomer
) -> None:
    cid = await new_customer()
    a, b, _c, d = [await add(api, cid, latte(x)) for x in "abcd"]
    moved = await api.UpdateFavorite(
        pb.UpdateFavoriteRequest(
            favorite=pb.Favorite(name=d.name, position=0), update_mask=FieldMask(paths=["position"])
        )
    )
    assert moved.position == 0
    renamed = await api.UpdateFavorite(
        pb.UpdateFavoriteRequest(
            favorite=pb.Favorite(name=a.name, drink_name="Almond latte"),
            update_mask=FieldMask(paths=["drink_name"]),
        )
    )
    assert renamed.drink_name == "Almond latte" and renamed.drink_id == "a"
    assert renamed.customization == a.customization
    # Making b the same drink as c is a duplicate.
    clash = api.UpdateFavorite(
        pb.UpdateFavoriteRequest(
            favorite=pb.Favorite(name=b.name, drink_id="c"),
            update_mask=FieldMask(paths=["drink_id"]),
        )
    )
    assert await status_of(clash) == grpc.StatusCode.ALREADY_EXISTS
    bad_path = api.UpdateFavorite(
        pb.UpdateFavoriteRequest(
            favorite=pb.Favorite(name=b.name), update_mask=FieldMask(paths=["is_usual"])
        )
    )
    assert await status_of(bad_path) == grpc.StatusCode.INVALID_ARGUMENT
    await api.RemoveFavorite(pb.RemoveFavoriteRequest(name=a.name))
    again = api.RemoveFavorite(pb.RemoveFavoriteRequest(name=a.name))
    assert await status_of(again) == grpc.StatusCode.NOT_FOUND
    listed = await api.ListFavorites(pb.ListFavoritesRequest(parent=f"customers/{cid}"))
    assert [(f.drink_id, f.position) for f in listed.favorites] == [("d", 0), ("b", 1), ("c", 2)]


async def test_paging_walks_every_favorite_once(api: Stub, new_customer: NewCustomer) -> None:
    cid = await new_customer()
    for i in range(7):
        await add(api, cid, latte(f"d{i}"))
    seen, token, tokens = [], "", []
    while True:
        page = await api.ListFavorites(
            pb.ListFavoritesRequest(parent=f"customers/{cid}", page_size=3, page_token=token)
        )
        seen += [f.drink_id for f in page.favorites]
        token = page.next_page_token
        if not token:
            break
        tokens.append(token)
    assert seen == [f"d{i}" for i in range(7)]
    other = await new_customer()
    wrong = api.ListFavorites(
        pb.ListFavoritesRequest(parent=f"customers/{other}", page_token=tokens[0])
    )
    assert await status_of(wrong) == grpc.StatusCode.INVALID_ARGUMENT


async def test_one_usual_even_when_set_concurrently(api: Stub, new_customer: NewCustomer) -> None:
    cid = await new_customer()
    none = api.GetUsualOrder(pb.GetUsualOrderRequest(customer=f"customers/{cid}"))
    assert await status_of(none) == grpc.StatusCode.NOT_FOUND
    favs = [await add(api, cid, latte(f"d{i}")) for i in range(5)]
    await asyncio.gather(
        *(api.SetUsualOrder(pb.SetUsualOrderRequest(favorite=f.name)) for f in favs * 4)
    )
    listed = await api.ListFavorites(pb.ListFavoritesRequest(parent=f"customers/{cid}"))
    assert sum(f.is_usual for f in listed.favorites) == 1
    chosen = await api.SetUsualOrder(pb.SetUsualOrderRequest(favorite=favs[2].name))
    usual = await api.GetUsualOrder(pb.GetUsualOrderRequest(customer=f"customers/{cid}"))
    assert usual.name == chosen.name == favs[2].name and usual.is_usual


async def test_same_key_returns_first_result_and_other_request_conflicts(
    api: Stub, new_customer: NewCustomer
) -> None:
    cid = await new_customer()
    first = await add(api, cid, latte(), key="fav-1")
    again = await add(api, cid, latte(), key="fav-1")
    assert again == first
    other = add(api, cid, latte("mocha"), key="fav-1")
    assert await status_of(other) == grpc.StatusCode.FAILED_PRECONDITION
    listed = await api.ListFavorites(pb.ListFavoritesRequest(parent=f"customers/{cid}"))
    assert len(listed.favorites) == 1
