"""The WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi …`.

Settings that cannot start the app (no SECRET_KEY in production, a malformed number) end the
command with one line on stderr naming what to set, and exit status 2, not a traceback.
"""

from fvapp import create_app
from fvapp.config import ConfigError, exit_for

try:
    app = create_app()
except ConfigError as error:
    exit_for(error)
