"""Server reflection, as `grpc.reflection.v1` and as `grpc.reflection.v1alpha`.

grpcio-reflection serves only v1alpha. Current clients (grpcurl, Postman,
grpc-java) ask for v1 first, and one that speaks only v1 finds nothing. The two
are the same messages under another package name, so v1 is the v1alpha servicer
registered under the v1 name, and the v1 file is v1alpha's with its package
renamed: a client resolving v1 from v1 answers finds v1 types.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha._async import ReflectionServicer

V1_SERVICE = "grpc.reflection.v1.ServerReflection"
_V1_FILE = "grpc/reflection/v1/reflection.proto"
_ALPHA, _V1 = ".grpc.reflection.v1alpha.", ".grpc.reflection.v1."


def _add_v1_file() -> None:
    """The v1 descriptor in the default pool, where reflection looks symbols up."""
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(_V1_FILE)
        return  # a later grpcio-reflection (or protobuf) may bring its own
    except KeyError:
        pass
    file = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(file)
    file.name, file.package = _V1_FILE, "grpc.reflection.v1"
    for message in file.message_type:
        for field in message.field:
            if field.HasField("type_name"):  # set on a scalar, it would not build
                field.type_name = field.type_name.replace(_ALPHA, _V1)
    for method in file.service[0].method:
        method.input_type = method.input_type.replace(_ALPHA, _V1)
        method.output_type = method.output_type.replace(_ALPHA, _V1)
    pool.Add(file)


def add_reflection(service_names: tuple[str, ...], server: Any) -> None:
    """Reflection of `service_names` and of itself, in both versions, on `server`."""
    _add_v1_file()
    names = (*service_names, reflection.SERVICE_NAME, V1_SERVICE)
    servicer = ReflectionServicer(names)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    handlers = {
        "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo,
            request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
        )
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(V1_SERVICE, handlers),))
    server.add_registered_method_handlers(V1_SERVICE, handlers)
