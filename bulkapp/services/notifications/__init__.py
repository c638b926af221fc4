"""Notifications: in-app notifications, their email copies, and tenant-facing events.

Modules:
- ``email``
- ``events``
- ``notify``
"""
