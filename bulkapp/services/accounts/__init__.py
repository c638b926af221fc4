"""Accounts: tenants and users, sign-up and its mail, passwords, profiles and avatars, teammates,
API keys, the platform admin's work on tenants, and the demo tenant.

Modules:
- ``api_key_settings``
- ``api_keys``
- ``client_admin``
- ``demo``
- ``email_change``
- ``errors``
- ``invite_mail``
- ``mail``
- ``password_reset``
- ``passwords``
- ``profiles``
- ``roles``
- ``sessions``
- ``signed_links``
- ``team``
- ``users``
"""
