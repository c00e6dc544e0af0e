import pytest

from fvapp.config import ConfigError, from_environment


def test_production_refuses_to_start_without_a_secret_key():
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        from_environment({"FVAPP_ENV": "production"})


def test_production_cookies_are_secure_and_postgres_urls_use_psycopg():
    config = from_environment(
        {"FVAPP_ENV": "production", "SECRET_KEY": "s" * 32,
         "DATABASE_URL": "postgres://u@db/app", "REDIS_URL": "redis://r:6379/0"}
    )
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db/app"
    assert "pool_pre_ping" not in config["SQLALCHEMY_ENGINE_OPTIONS"]  # db_setup pings idle ones
    assert config["SQLALCHEMY_ENGINE_OPTIONS"]["pool_recycle"] > 0
    assert config["RATELIMIT_STORAGE_URI"] == "redis://r:6379/0"
    assert config["RATELIMIT_STRATEGY"] == "moving-window"  # login pages (the API: ratelimit.py)
    assert config["BCRYPT_ROUNDS"] >= 12


def test_development_defaults_to_sqlite_in_instance_and_keeps_a_secret():
    config = from_environment({"FVAPP_ENV": "development"})
    assert config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")
    assert "instance" in config["SQLALCHEMY_DATABASE_URI"]
    assert config["SECRET_KEY"] == from_environment({"FVAPP_ENV": "development"})["SECRET_KEY"]
    assert config["RATELIMIT_STORAGE_URI"] == "memory://"


def test_production_refuses_a_bcrypt_cost_below_12():
    base = {"FVAPP_ENV": "production", "SECRET_KEY": "s" * 32}
    with pytest.raises(ConfigError, match="BCRYPT_ROUNDS must be at least 12 in production"):
        from_environment({**base, "BCRYPT_ROUNDS": "11"})
    with pytest.raises(ConfigError, match="BCRYPT_ROUNDS must be a whole number"):
        from_environment({**base, "BCRYPT_ROUNDS": "twelve"})
    assert from_environment({**base, "BCRYPT_ROUNDS": "13"})["BCRYPT_ROUNDS"] == 13
    # Tests and development may go lower, to stay fast.
    assert from_environment({"FVAPP_ENV": "testing", "BCRYPT_ROUNDS": "4"})["BCRYPT_ROUNDS"] == 4


def test_the_session_cookie_is_a_host_cookie_in_production():
    production = from_environment({"FVAPP_ENV": "production", "SECRET_KEY": "s" * 32})
    assert production["SESSION_COOKIE_NAME"].startswith("__Host-")
    assert production["SESSION_COOKIE_SECURE"] is True
    assert production["SESSION_COOKIE_PATH"] == "/" and production["SESSION_COOKIE_DOMAIN"] is None
    assert production["SESSION_IDLE_TIMEOUT"] == 12 * 3600
    assert production["SESSION_ABSOLUTE_LIFETIME"] == 14 * 24 * 3600
    for plain_http in ("development", "testing"):  # not Secure there, so no "__Host-"
        assert from_environment({"FVAPP_ENV": plain_http})["SESSION_COOKIE_NAME"] == "session"
    custom = from_environment({"FVAPP_ENV": "development", "SESSION_IDLE_TIMEOUT": "600",
                               "SESSION_ABSOLUTE_LIFETIME": "3600"})
    assert (custom["SESSION_IDLE_TIMEOUT"], custom["SESSION_ABSOLUTE_LIFETIME"]) == (600, 3600)
    with pytest.raises(ConfigError, match="SESSION_IDLE_TIMEOUT"):
        from_environment({"FVAPP_ENV": "development", "SESSION_IDLE_TIMEOUT": "0"})
