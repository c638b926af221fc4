"""Billing: the wallet ledger (the only code that changes a balance), prices and quotes, M-Pesa top-ups
(STK push, paybill, reconciliation) and the statement's read side.

Modules:
- ``ledger_views``
- ``paybill``
- ``pricing``
- ``reconcile``
- ``topups``
- ``wallet``
- ``wallet_settings``
"""
