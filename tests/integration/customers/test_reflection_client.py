"""The issue's "done when": a client knowing nothing but server reflection.

No generated stubs here: the client learns the service from the running
server (ProtoReflectionDescriptorDatabase), builds messages from JSON the way
grpcurl does, and drives a family through its life.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from customer_api.server import build_server
from customer_core.context import Context
from tests.support.open_api import NO_AUTH

SERVICE = "customer.v1.CustomerService"


class ReflectingClient:
    def __init__(self, channel: grpc.Channel) -> None:
        self.channel = channel
        self.pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        self.service = self.pool.FindServiceByName(SERVICE)

    def call(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        m = self.service.FindMethodByName(method)
        request_cls = message_factory.GetMessageClass(m.input_type)
        response_cls = message_factory.GetMessageClass(m.output_type)
        rpc = self.channel.unary_unary(
            f"/{SERVICE}/{method}",
            request_serializer=request_cls.SerializeToString,
            response_deserializer=response_cls.FromString,
        )
        request = json_format.ParseDict(body, request_cls(), descriptor_pool=self.pool)
        reply = rpc(request, timeout=30)
        return json_format.MessageToDict(reply, descriptor_pool=self.pool)


def drive(port: int) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        c = ReflectingClient(channel)
        family = c.call("CreateFamily", {"family": {"displayName": "Rivera"}})
        members = [
            c.call(
                "CreateCustomer",
                {
                    "customer": {
                        "family": family["name"],
                        "username": username,
                        "displayName": display,
                        "role": role,
                        "preferences": {"milk": "MILK_TYPE_WHOLE", "size": "DRINK_SIZE_MEDIUM"},
                    },
                    "idempotencyKey": f"create-{username}",
                },
            )
            for username, display, role in [
                ("ana", "Ana", "FAMILY_ROLE_OWNER"),
                ("sofia", "Sofia", "FAMILY_ROLE_CHILD"),
            ]
        ]
        ana, sofia = members
        assert c.call("GetCustomer", {"name": ana["name"]}) == ana
        assert c.call("GetCustomer", {"username": "SOFIA"})["name"] == sofia["name"]

        updated = c.call(
            "UpdateCustomer",
            {
                "customer": {"name": sofia["name"], "preferences": {"milk": "MILK_TYPE_OAT"}},
                "updateMask": "preferences.milk",
            },
        )
        assert updated["preferences"] == {"milk": "MILK_TYPE_OAT", "size": "DRINK_SIZE_MEDIUM"}

        first = c.call("ListFamilyMembers", {"family": family["name"], "pageSize": 1})
        second = c.call(
            "ListFamilyMembers",
            {"family": family["name"], "pageSize": 1, "pageToken": first["nextPageToken"]},
        )
        assert [m["username"] for m in first["members"] + second["members"]] == ["ana", "sofia"]
        assert "nextPageToken" not in second

        c.call("DeleteCustomer", {"name": ana["name"]})
        left = c.call("ListFamilyMembers", {"family": family["name"]})
        assert [m["username"] for m in left["members"]] == ["sofia"]

        with pytest.raises(grpc.RpcError) as caught:
            c.call(
                "CreateCustomer",
                {
                    "customer": {
                        "family": family["name"],
                        "username": "x",
                        "displayName": "X",
                    }
                },
            )
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
        assert caught.value.details().startswith("customer.username:")  # type: ignore[attr-defined]


async def test_a_reflection_only_client_manages_a_family(ctx: Context) -> None:
    server = build_server(ctx, 0, host="127.0.0.1", security=NO_AUTH)
    await server.start()
    try:
        # The blocking client runs in a thread while this loop serves it.
        await asyncio.to_thread(drive, server.port)
    finally:
        await server.stop(0)
