"""Generated gRPC/protobuf code for tagllm.internal.v1 (make protos)."""
