"""WSGI entry point (gunicorn starship.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "starship.settings")

application = get_wsgi_application()
