"""The shared inbox: conversations, threads and replies, and inbound messages landing in them.

Modules:
- ``conversations``
- ``inbound``
"""
