"""Models and migrations agree, and `db upgrade` builds the schema from empty (both backends)."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from fvapp.extensions import db


def test_autogenerate_finds_no_difference(app_context):
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "render_as_batch": True}
        )
        diff = compare_metadata(context, db.metadata)
    assert diff == []


def test_upgrade_from_empty_made_every_table_and_constraint(app_context):
    inspector = sa.inspect(db.engine)
    tables = set(inspector.get_table_names())
    assert {"users", "workspaces", "memberships", "api_keys", "initiatives", "audit_events"} <= tables
    assert "alembic_version" in tables
    uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("memberships")}
    assert ("user_id", "workspace_id") in uniques
    key_uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("api_keys")}
    assert ("key_hash",) in key_uniques
    for table in ("memberships", "api_keys", "initiatives", "audit_events"):
        indexed = {tuple(ix["column_names"]) for ix in inspector.get_indexes(table)}
        for fk in inspector.get_foreign_keys(table):
            assert tuple(fk["constrained_columns"]) in indexed, (table, fk)


def test_check_constraints_refuse_unknown_plan_and_role(app_context):
    import uuid

    import pytest
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), db.engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO workspaces (id, name, plan, created_at) "
                    "VALUES (:id, 'X', 'gold', CURRENT_TIMESTAMP)"),
            {"id": uuid.uuid4().hex if db.engine.dialect.name == "sqlite" else uuid.uuid4()},
        )


def test_email_is_unique_whatever_its_case(app_context):
    import pytest
    from sqlalchemy.exc import IntegrityError

    from fvapp.models import User

    db.session.add(User(email="a@x.test", name="A", password_hash="x" * 60))
    db.session.commit()
    db.session.add(User(email="A@X.test", name="B", password_hash="x" * 60))
    with pytest.raises(IntegrityError):  # uppercase is refused by the lowercase check
        db.session.commit()
    db.session.rollback()
    db.session.add(User(email="a@x.test", name="C", password_hash="x" * 60))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
