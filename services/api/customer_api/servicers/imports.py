"""ImportRPCs: ImportCustomers, a client stream of records written in batches."""

from __future__ import annotations

from collections.abc import AsyncIterator

from customer_api.convert.imports import checked_record_from_pb, summary_to_pb
from customer_api.servicers.base import RpcBase, RpcContext
from customer_core.errors import InvalidArgument
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.usecases.imports import ImportSession


class ImportRPCs(RpcBase):
    async def ImportCustomers(
        self, request_iterator: AsyncIterator[pb.ImportCustomersRequest], context: RpcContext
    ) -> pb.ImportCustomersResponse:
        session = ImportSession(self.ctx)
        position = 0
        try:
            async for request in request_iterator:
                records = [request.record] if request.HasField("record") else []
                records += request.records
                for m in records:
                    try:
                        record = checked_record_from_pb(m, position)
                    except InvalidArgument as exc:
                        session.reject(position, m.external_id, exc)
                    else:
                        # Awaiting a batch write holds the stream: gRPC flow
                        # control then stops the client, so memory stays bounded.
                        await session.add_checked(record)
                    position += 1
            return summary_to_pb(await session.finish())
        finally:
            await session.close()
