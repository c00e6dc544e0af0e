"""CLI of SPEC §6."""

from sqlalchemy import func, select

from fvapp.extensions import db
from fvapp.models import Membership, User, Workspace
from fvapp.services import accounts


def _table():
    rows = db.session.execute(
        select(Workspace.name, Workspace.plan, User.email, Membership.role)
        .join(Membership, Membership.workspace_id == Workspace.id)
        .join(User, User.id == Membership.user_id)
    ).all()
    return sorted(tuple(r) for r in rows)


EXPECTED = sorted([
    ("Acme Analytics", "pro", "ava@acme.test", "owner"),
    ("Acme Analytics", "pro", "adam@acme.test", "admin"),
    ("Acme Analytics", "pro", "mia@acme.test", "member"),
    ("Fox Free", "free", "fred@fox.test", "owner"),
    ("Fox Free", "free", "adam@acme.test", "admin"),
])


def test_seed_demo_creates_exactly_the_demo_table_and_is_idempotent(app, runner):
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    assert "correct-horse-battery" in first.output
    with app.app_context():
        assert _table() == EXPECTED
    second = runner.invoke(args=["seed-demo"])
    assert second.exit_code == 0
    with app.app_context():
        assert _table() == EXPECTED
        assert db.session.scalar(select(func.count()).select_from(User)) == 4
        names = {u.email: u.name for u in db.session.scalars(select(User))}
        assert names["ava@acme.test"] == "Ava Owner" and names["fred@fox.test"] == "Fred Free"
        assert accounts.authenticate("mia@acme.test", "correct-horse-battery") is not None


def test_create_user_prompts_for_the_password(app, runner):
    result = runner.invoke(
        args=["create-user", "New@Person.test", "--name", "New Person"],
        input="a-long-password-1\na-long-password-1\n",
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert accounts.authenticate("new@person.test", "a-long-password-1").name == "New Person"


def test_create_user_errors_are_clear(runner, demo):
    result = runner.invoke(
        args=["create-user", "ava@acme.test", "--name", "Dup"], input="a-long-password-1\n" * 2
    )
    assert result.exit_code != 0 and "already exists" in result.output
    result = runner.invoke(
        args=["create-user", "long@x.test", "--name", "L"], input=("p" * 73 + "\n") * 2
    )
    assert result.exit_code != 0 and "at most 72 bytes" in result.output


def test_set_plan_by_name_and_id(runner, demo):
    result = runner.invoke(args=["set-plan", "Fox Free", "team"])
    assert result.exit_code == 0, result.output
    assert demo.fox.plan == "team"
    result = runner.invoke(args=["set-plan", str(demo.fox.id), "internal"])
    assert result.exit_code == 0
    assert demo.fox.plan == "internal"


def test_set_plan_errors(runner, demo):
    result = runner.invoke(args=["set-plan", "Nope Inc", "pro"])
    assert result.exit_code != 0 and "No workspace" in result.output
    result = runner.invoke(args=["set-plan", "Fox Free", "gold"])
    assert result.exit_code != 0 and "Unknown plan" in result.output
    assert demo.fox.plan == "free"


def test_seed_demo_lived_in_gives_acme_a_history_once(app, runner):
    from fvapp.models import ApiKey, KeyLeakAlert, KeyUsageDaily

    plain = runner.invoke(args=["seed-demo"])
    assert plain.exit_code == 0
    with app.app_context():
        # the plain demo has one key only, the one that expires soon
        assert db.session.scalars(select(ApiKey.name)).all() == ["Staging smoke tests"]
    first = runner.invoke(args=["seed-demo", "--lived-in"])
    assert first.exit_code == 0, first.output
    assert "history added" in first.output

    def snapshot():
        with app.app_context():
            rows = db.session.execute(select(ApiKey.name, ApiKey.revoked_at.is_not(None), ApiKey.revoked_reason,
                                             ApiKey.last_used_user_agent)).all()
            return (sorted(tuple(r) for r in rows),
                    db.session.scalar(select(func.count()).select_from(KeyUsageDaily)),
                    db.session.scalar(select(func.count()).select_from(KeyLeakAlert)))

    keys_, usage_rows, alerts = snapshot()
    assert 11 <= len(keys_) <= 13 and alerts == 1
    names = [k[0] for k in keys_]
    assert "Staging smoke tests" in names  # the expiring key is part of the story
    assert "Staging deploy bot for the data-warehouse migration project" in names
    revoked = [k for k in keys_ if k[1]]
    reasons = {k[2] or "" for k in revoked}
    assert "" in reasons and "creator removed from workspace" in reasons
    assert any(r.startswith("leaked: found public at https://github.com/") for r in reasons)
    assert len(revoked) >= 4 and len(keys_) - len(revoked) <= 10
    assert any(k[3] and len(k[3]) > 80 for k in keys_)  # long CI user agents
    assert usage_rows > 200
    with app.app_context():
        oldest = db.session.scalar(select(func.min(KeyUsageDaily.day)))
        assert (accounts_today() - oldest).days >= 80  # about 90 days of history
        assert _table() == EXPECTED  # the demo table is untouched (Leo was removed again)
    again = runner.invoke(args=["seed-demo", "--lived-in"])
    assert again.exit_code == 0 and "already has its history" in again.output
    assert snapshot() == (keys_, usage_rows, alerts)


def accounts_today():
    from fvapp.usage import today

    return today()
