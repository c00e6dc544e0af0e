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
