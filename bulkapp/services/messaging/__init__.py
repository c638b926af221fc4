"""Messaging: composing and sending one message, dispatch to providers, delivery reports, templates, reply
links and the public reply form, and the message list.

Modules:
- ``compose``
- ``cursors``
- ``delivery``
- ``dispatch``
- ``link_clicks``
- ``message_list``
- ``reply_form``
- ``shortlinks``
- ``templates``
"""
