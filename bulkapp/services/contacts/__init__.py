"""The contact book: contacts, their CSV files and the chunked import.

Modules:
- ``book``
- ``csv_files``
- ``importing``
- ``rows``
"""
