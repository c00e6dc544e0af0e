# Read by the `flask` command only (python-dotenv); gunicorn runs in production mode.
FLASK_APP=wsgi
FVAPP_ENV=development
