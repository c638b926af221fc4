"""Accounts: tenants and users, sign-up and its mail, passwords, profiles and avatars, teammates,
API keys, the platform admin's work on tenants, and the demo tenant.

Modules:
- ``api_key_settings``
- ``api_keys``
- ``client_admin``
- ``demo``
- ``invite_mail``
- ``mail``
- ``passwords``
- ``profiles``
- ``roles``
- ``sessions``
- ``team``
- ``users``
"""
