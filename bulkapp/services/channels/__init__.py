"""Provider channels: which channel a message goes through, their settings, validation and vendor checks.

Modules:
- ``checks``
- ``routing``
- ``settings``
- ``validation``
"""
