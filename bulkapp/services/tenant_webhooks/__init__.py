"""Outbound webhooks to tenants (Standard Webhooks): settings, target checks, signed HTTP
attempts and the delivery log. (Inbound vendor webhooks are the `webhooks` blueprint.)

Modules:
- ``delivery``
- ``http``
- ``settings``
- ``targets``
"""
