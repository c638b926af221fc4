"""Campaigns: drafts and the live quote, launch (message rows, the wallet hold), recipients, progress.

Modules:
- ``drafts``
- ``launch``
- ``message_rows``
- ``progress``
- ``recipients``
"""
