"""Generated from protos/ by clients/python/gen-proto.sh; do not edit."""
