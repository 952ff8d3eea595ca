"""FamilyRPCs: not built yet; their RPCs answer UNIMPLEMENTED through the Unbuilt base."""

from __future__ import annotations

from customer_api.servicers.base import RpcBase


class FamilyRPCs(RpcBase):
    pass
