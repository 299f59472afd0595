"""attnres_client: a small Python client for attnres-server (gRPC, attnres.v1.AttnRes).

The protobuf/gRPC stubs are generated into attnres_client/_proto by generate_stubs.sh (or by
the CMake build); they are imported as `attnres.v1.attnres_pb2` from that directory.
"""

from attnres_client.client import Client, GenerateResult, StreamChunk  # noqa: F401
from attnres_client.client import attnres_pb2, attnres_pb2_grpc  # noqa: F401

__all__ = ["Client", "GenerateResult", "StreamChunk", "attnres_pb2", "attnres_pb2_grpc"]
