"""The core of gemstone-aio: JSON-RPC engine, decorators, service class and app factory."""
