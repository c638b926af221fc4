"""Compliance: opt-outs and the suppression list, and promotional quiet hours.

Modules:
- ``optouts``
- ``quiet_hours``
- ``suppression``
"""
