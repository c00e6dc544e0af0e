"""The lived-in demo (`flask --app wsgi seed-demo --lived-in`): history for Acme Analytics as a
workspace that has been used for months. Ten-odd keys with long names, 90 days of usage on
several, origins with real CI user agents, and keys revoked by hand, by a member's removal
and by a leak report (its alert left open). The screenshots and layout tests use it: that is
what real admins see. Idempotent: a workspace that already has the history is left alone."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update

from .extensions import db
from .leaks import reports as leaks
from .models import ApiKey, AuditEvent, KeyLeakAlert, KeyUsageDaily, Membership, User, utcnow
from .services import accounts, keys, members, workspaces
from .services.passwords import hash_password
from .services.transaction import atomic
from .usage import KEPT_DAYS, today

WORKSPACE = "Acme Analytics"
MARKER = "Staging deploy bot for the data-warehouse migration project"
LEFT_MEMBER = ("leo@acme.test", "Leo Contractor")  # was a member; removed, which revoked his keys
LEAK_URL = ("https://github.com/acme-analytics/marketing-site/blob/"
            "3f2c9e1a7b4d5e6f8a9b0c1d2e3f4a5b6c7d8e9f/.github/workflows/preview-deploy.yml")

GITHUB_ACTIONS = ("Mozilla/5.0 (X11; Linux x86_64) GitHub-Actions-Runner/2.321.0 "
                  "(ubuntu-22.04; +https://github.com/actions/runner) python-requests/2.32.3 "
                  "CPython/3.12.7 Linux/6.5.0-1025-azure")
GITLAB = ("gitlab-runner 17.5.2 (17-5-stable; go1.22.7; linux/amd64) "
          "Terraform/1.9.8 (+https://www.terraform.io) terraform-provider-forcevue/0.4.1")
ZAPIER = "Zapier (+https://zapier.com/help/; node-fetch/2.7.0 node/20.18.0 linux x64)"
CRON = "python-httpx/0.27.2 (warehouse-export/3.4.0; +https://acme-analytics.example/etl)"
GRAFANA = "Grafana/11.3.0 (infinity-datasource/2.11.4; linux; amd64) Go-http-client/1.1"
CIRCLECI = "CircleCI/Runner 3.0.23 (linux/amd64) curl/8.5.0"
SELENIUM = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "HeadlessChrome/131.0.6778.85 Safari/537.36 selenium-grid/4.26")


@dataclass(frozen=True)
class DemoKey:
    name: str
    creator: str          # email
    age_days: int         # created this many days ago
    daily: int = 0        # typical requests per day (0: never used)
    refused: float = 0.0  # share of the day's requests refused (403/429/other 4xx)
    since_use_min: int = 0  # last used this many minutes ago
    origin: tuple[str, str] | None = None  # (ip, user agent)
    revoked: str | None = None   # "hand", "removal" or "leak"
    revoked_days: int = 0        # revoked this many days ago


KEYS = (
    DemoKey("CI pipeline", "ava@acme.test", 88, 340, 0.02, 3, ("20.57.12.201", GITHUB_ACTIONS)),
    DemoKey(MARKER, "adam@acme.test", 61, 120, 0.04, 47, ("34.141.77.18", GITLAB)),
    DemoKey("Zapier integration", "ava@acme.test", 75, 40, 0.01, 180, ("54.86.9.50", ZAPIER)),
    DemoKey("Nightly warehouse export for the finance team's quarterly reconciliation",
            "adam@acme.test", 52, 24, 0.0, 60 * 9, ("10.24.3.117", CRON)),
    DemoKey("Grafana dashboard sync", "ava@acme.test", 40, 900, 0.08, 1, ("2a05:d014:9f3:c100::2f", GRAFANA)),
    DemoKey("Terraform provider (infra repo)", "adam@acme.test", 70, 0, 0.0, 60 * 24 * 41,
            ("34.141.77.18", GITLAB)),
    DemoKey("Local testing on Ava's laptop", "ava@acme.test", 6),
    DemoKey("Marketing site preview builds", "ava@acme.test", 45, 60, 0.0, 60 * 24 * 2 + 200,
            ("140.82.114.3", GITHUB_ACTIONS), revoked="leak", revoked_days=2),
    DemoKey("QA automation suite (Selenium grid)", LEFT_MEMBER[0], 80, 200, 0.05, 60 * 24 * 9 + 200,
            ("18.202.4.77", SELENIUM), revoked="removal", revoked_days=9),
    DemoKey("Leo's BigQuery sync experiments", LEFT_MEMBER[0], 66, 15, 0.3, 60 * 24 * 12,
            ("35.187.60.4", CRON), revoked="removal", revoked_days=9),
    DemoKey("Old CircleCI pipeline", "ava@acme.test", 89, 150, 0.0, 60 * 24 * 43,
            ("3.217.44.190", CIRCLECI), revoked="hand", revoked_days=42),
    DemoKey("Legacy reporting cron", "adam@acme.test", 90, 10, 0.0, 60 * 24 * 62,
            ("10.24.3.117", CRON), revoked="hand", revoked_days=60),
)


def seed_lived_in(password: str) -> bool:
    """Adds the history to Acme Analytics (the plain demo must exist). False if it was there."""
    ws = workspaces.find_workspace(WORKSPACE)
    if db.session.scalar(select(ApiKey.id).where(ApiKey.workspace_id == ws.id, ApiKey.name == MARKER)):
        return False
    now = utcnow()
    with atomic():
        leo = accounts.find_user(LEFT_MEMBER[0])
        if leo is None:
            leo = User(email=LEFT_MEMBER[0], name=LEFT_MEMBER[1], password_hash=hash_password(password))
            db.session.add(leo)
            db.session.flush()
        if workspaces.membership(leo.id, ws.id) is None:
            db.session.add(Membership(user_id=leo.id, workspace_id=ws.id, role="admin"))
    people = {email: accounts.find_user(email) for email in {k.creator for k in KEYS}}
    ava, adam, leo = (people[e] for e in ("ava@acme.test", "adam@acme.test", LEFT_MEMBER[0]))

    # Replayed in the order it happened, so the 10-key cap holds at every step (with the plain
    # demo's key that expires soon, created today, counted at every step too).
    events = sorted([(spec.age_days, 1, spec) for spec in KEYS]
                    + [(spec.revoked_days, 0, spec) for spec in KEYS if spec.revoked],
                    key=lambda e: (-e[0], e[1]))
    created = {}
    removed = False
    leak = None
    for _, is_creation, spec in events:
        if is_creation:
            created[spec.name] = keys.create_key(ws.id, people[spec.creator].id, spec.name)
        elif spec.revoked == "hand":
            keys.revoke_key(ws.id, created[spec.name].key.id, adam.id if "cron" in spec.name else ava.id)
        elif spec.revoked == "removal" and not removed:
            members.remove_member(ws.id, adam.id, workspaces.membership(leo.id, ws.id).id)
            removed = True
        elif spec.revoked == "leak":
            leak = spec
            leaks.handle_report([leaks.Reported(token=created[spec.name].clear,
                                                type="forcevue_api_key", url=LEAK_URL)])

    with atomic():
        for spec in KEYS:
            key = created[spec.name].key
            created_at = now - timedelta(days=spec.age_days, hours=spec.age_days % 7)
            values = {"created_at": created_at}
            if spec.origin:
                values.update(last_used_at=now - timedelta(minutes=spec.since_use_min),
                              last_used_ip=spec.origin[0], last_used_user_agent=spec.origin[1])
            if spec.revoked:
                values["revoked_at"] = now - timedelta(days=spec.revoked_days, hours=3)
            db.session.execute(update(ApiKey).where(ApiKey.id == key.id).values(**values))
            _backdate_events(key.id, created_at, values.get("revoked_at"))
            _add_usage(key.id, spec, created_at)
        db.session.execute(update(KeyLeakAlert).where(KeyLeakAlert.workspace_id == ws.id)
                           .values(created_at=now - timedelta(days=leak.revoked_days, hours=3)))
        removed_at = now - timedelta(days=9, hours=3)
        db.session.execute(update(AuditEvent).where(AuditEvent.workspace_id == ws.id,
                                                    AuditEvent.action == "member.removed")
                           .values(created_at=removed_at))
    return True


def _backdate_events(key_id, created_at, revoked_at) -> None:
    db.session.execute(update(AuditEvent).where(AuditEvent.target_id == key_id,
                                                AuditEvent.action == "api_key.created")
                       .values(created_at=created_at))
    if revoked_at is not None:
        db.session.execute(update(AuditEvent).where(
            AuditEvent.target_id == key_id,
            AuditEvent.action.in_(("api_key.revoked", "api_key.leak_revoked")),
        ).values(created_at=revoked_at))


def _add_usage(key_id, spec: DemoKey, created_at) -> None:
    """A working-week rhythm with noise, from the day the key was made to the last use."""
    if not spec.daily:
        return
    rng = random.Random(spec.name)
    last = today() - timedelta(days=spec.since_use_min // (60 * 24))
    for back in range(KEPT_DAYS - 1, -1, -1):
        day = today() - timedelta(days=back)
        if day < created_at.date() or day > last:
            continue
        weekend = day.weekday() >= 5
        total = max(0, round(spec.daily * (0.3 if weekend else 1.0) * rng.uniform(0.55, 1.4)))
        refused = round(total * spec.refused * rng.uniform(0, 2))
        if not total:
            continue
        denied = refused // 3
        limited = refused // 3
        db.session.add(KeyUsageDaily(key_id=key_id, day=day, ok=total - refused, denied=denied,
                                     limited=limited, errors=refused - denied - limited))
