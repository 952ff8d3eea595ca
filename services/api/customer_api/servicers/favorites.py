"""FavoriteRPCs: favorite drinks and the usual order (translation only)."""

from __future__ import annotations

from google.protobuf.empty_pb2 import Empty

from customer_api.convert.favorites import draft_from_pb, favorite_to_pb
from customer_api.rpc import Encoded
from customer_api.servicers.base import RpcBase, RpcContext
from customer_core.domain import names
from customer_core.domain.favorites import Favorite
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.usecases import favorites, idempotency


def _encode_favorite(favorite: Favorite) -> bytes:
    return favorite_to_pb(favorite).SerializeToString()


def _call(request: object, key: str, method: str) -> idempotency.Call | None:
    fingerprint = request.SerializeToString(deterministic=True)  # type: ignore[attr-defined]
    return idempotency.Call.of(key, method, fingerprint)


class FavoriteRPCs(RpcBase):
    async def AddFavorite(self, request: pb.AddFavoriteRequest, context: RpcContext) -> pb.Favorite:
        call = _call(request, request.idempotency_key, "AddFavorite")
        customer_id = names.customer_id(request.parent, "parent")
        draft = draft_from_pb(request.favorite)
        return favorite_to_pb(await favorites.add_favorite(self.ctx, customer_id, draft, call))

    async def ListFavorites(
        self, request: pb.ListFavoritesRequest, context: RpcContext
    ) -> pb.ListFavoritesResponse:
        customer_id = names.customer_id(request.parent, "parent")
        page = await favorites.list_favorites(
            self.ctx, customer_id, request.page_size, request.page_token
        )
        return pb.ListFavoritesResponse(
            favorites=[favorite_to_pb(f) for f in page.favorites],
            next_page_token=page.next_page_token,
        )

    async def UpdateFavorite(
        self, request: pb.UpdateFavoriteRequest, context: RpcContext
    ) -> pb.Favorite:
        call = _call(request, request.idempotency_key, "UpdateFavorite")
        customer_id, fid = names.favorite_ids(request.favorite.name, "favorite.name")
        updated = await favorites.update_favorite(
            self.ctx,
            customer_id,
            fid,
            draft_from_pb(request.favorite),
            request.favorite.position,
            list(request.update_mask.paths),
            call,
        )
        return favorite_to_pb(updated)

    async def RemoveFavorite(self, request: pb.RemoveFavoriteRequest, context: RpcContext) -> Empty:
        call = _call(request, request.idempotency_key, "RemoveFavorite")
        customer_id, fid = names.favorite_ids(request.name, "name")
        await favorites.remove_favorite(self.ctx, customer_id, fid, call)
        return Empty()

    async def SetUsualOrder(
        self, request: pb.SetUsualOrderRequest, context: RpcContext
    ) -> pb.Favorite:
        call = _call(request, request.idempotency_key, "SetUsualOrder")
        customer_id, fid = names.favorite_ids(request.favorite, "favorite")
        return favorite_to_pb(await favorites.set_usual_order(self.ctx, customer_id, fid, call))

    async def GetUsualOrder(self, request: pb.GetUsualOrderRequest, context: RpcContext) -> Encoded:
        customer_id = names.customer_id(request.customer, "customer")
        return Encoded(await favorites.get_usual_order(self.ctx, customer_id, _encode_favorite))
