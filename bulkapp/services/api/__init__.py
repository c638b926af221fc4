"""The REST API's own machinery: the OpenAPI document and idempotency keys.

Modules:
- ``idempotency``
- ``openapi``
"""
