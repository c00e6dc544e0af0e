"""Operator commands: seed-demo, create-user, set-plan (SPEC §6)."""

from __future__ import annotations

from datetime import timedelta

import click
from flask import Flask
from sqlalchemy import select

from .extensions import db
from .models import ApiKey, Membership, User, Workspace, utcnow
from .services import accounts, keys, plans, workspaces
from .services.errors import DomainError
from .services.passwords import hash_password
from .services.transaction import atomic

DEMO_PASSWORD = "correct-horse-battery"  # noqa: S105  (the documented demo login)
DEMO_USERS = (
    ("ava@acme.test", "Ava Owner"),
    ("adam@acme.test", "Adam Admin"),
    ("mia@acme.test", "Mia Member"),
    ("fred@fox.test", "Fred Free"),
)
DEMO_WORKSPACES = (
    ("Acme Analytics", "pro", (("ava@acme.test", "owner"), ("adam@acme.test", "admin"),
                               ("mia@acme.test", "member"))),
    ("Fox Free", "free", (("fred@fox.test", "owner"), ("adam@acme.test", "admin"))),
)


def seed_demo() -> None:
    """Idempotent: creates what is missing of the demo table and nothing else."""
    with atomic():
        users = {}
        for email, name in DEMO_USERS:
            user = accounts.find_user(email)
            if user is None:
                user = User(email=email, name=name, password_hash=hash_password(DEMO_PASSWORD))
                db.session.add(user)
            users[email] = user
        db.session.flush()
        for ws_name, plan, members in DEMO_WORKSPACES:
            ws = db.session.scalar(select(Workspace).where(Workspace.name == ws_name))
            if ws is None:
                ws = Workspace(name=ws_name, plan=plan)
                db.session.add(ws)
                db.session.flush()
            for email, role in members:
                if workspaces.membership(users[email].id, ws.id) is None:
                    db.session.add(Membership(user_id=users[email].id, workspace_id=ws.id, role=role))


DEMO_EXPIRING_KEY = ("Staging smoke tests", "ava@acme.test", "Acme Analytics", 3)


def seed_demo_expiring_key() -> None:
    """The demo key that expires in three days, so the page shows its warning: made when the
    workspace has no active key of that name (and room for one)."""
    name, email, ws_name, days = DEMO_EXPIRING_KEY
    ws = db.session.scalar(select(Workspace).where(Workspace.name == ws_name))
    user = accounts.find_user(email)
    if ws is None or user is None or keys.cap_reached(keys.count_active(ws.id)):
        return
    now = utcnow()
    if db.session.scalar(select(ApiKey.id).where(
            ApiKey.workspace_id == ws.id, ApiKey.name == name, ApiKey.active_at(now))) is None:
        keys.create_key(ws.id, user.id, name, expires_at=now + timedelta(days=days))


def _say_where() -> None:
    """Operators see which database a command changes (never its password)."""
    click.echo(f"Database: {db.engine.url.render_as_string(hide_password=True)}", err=True)


def register_cli(app: Flask) -> None:
    from .leaks.scanner import scan_command

    app.cli.add_command(scan_command)

    @app.cli.command("seed-demo")
    @click.option("--allow-production", is_flag=True,
                  help="Seed even though FVAPP_ENV is production (the passwords are public).")
    @click.option("--lived-in", is_flag=True,
                  help="Also give Acme Analytics months of history: ten-odd keys, 90 days of usage, "
                       "keys revoked by hand, by a member's removal and by a leak report.")
    def seed_demo_command(allow_production, lived_in):
        """Create the demo workspaces and users (idempotent)."""
        _say_where()
        if app.config["ENV_MODE"] == "production" and not allow_production:
            raise click.ClickException(
                "Refusing to seed demo accounts, whose password is public, into a production "
                "database. Pass --allow-production if this really is a demo deployment."
            )
        seed_demo()
        seed_demo_expiring_key()
        if lived_in:
            from .demo_lived_in import seed_lived_in

            added = seed_lived_in(DEMO_PASSWORD)
            click.echo("Acme Analytics: history added." if added else "Acme Analytics already has its history.")
        click.echo("Demo data ready. Every password is " + DEMO_PASSWORD + ":")
        for email, name in DEMO_USERS:
            click.echo(f"  {email:<16} {name}")

    @app.cli.command("create-user")
    @click.argument("email")
    @click.option("--name", required=True, help="The person's display name.")
    @click.password_option(help="Prompted for when not given.")
    def create_user_command(email, name, password):
        """Create a user who can sign in (prompts for the password)."""
        _say_where()
        try:
            user = accounts.create_user(email, name, password)
        except DomainError as err:
            raise click.ClickException(err.message) from None
        click.echo(f"Created {user.email} ({user.id}).")

    @app.cli.command("set-plan")
    @click.argument("workspace")
    @click.argument("plan")
    def set_plan_command(workspace, plan):
        """Set WORKSPACE's (name or id) plan: one of free, pro, team, consultant, internal."""
        _say_where()
        plan = plan.lower()
        try:
            ws = workspaces.find_workspace(workspace)
            ws = plans.set_plan(ws.id, plan, actor_id=None)
        except DomainError as err:
            raise click.ClickException(err.message) from None
        click.echo(f"{ws.name} is now on the {plan} plan.")
