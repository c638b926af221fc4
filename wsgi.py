"""WSGI entry point: gunicorn wsgi:app."""

from bulkapp import create_app

app = create_app()
