"""Generated gRPC/protobuf code for tagllm.v1 (make protos)."""
