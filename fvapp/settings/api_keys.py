"""Settings → API Keys: list, create (with the one-time reveal) and revoke (SPEC §3).

Every URL here answers 404 to anyone `can_manage_keys` says no to. With htmx the dialogs swap
into #dialog-host; without JavaScript the same URLs answer whole pages and plain forms.
"""

import secrets
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from flask import current_app, flash, make_response, redirect, render_template, request, session, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectChoice, SelectField, StringField

from ..leaks import reports as leaks
from ..models import utcnow
from ..paths import API_PREFIX
from ..services import keys, rules
from ..services.errors import DomainError, Forbidden
from ..usage import reading as key_usage
from ..web.context import client_ip
from ..web.htmx import hx, is_htmx, page_or_fragment
from . import bp, dialog_or_page, gate

KEYS_CHANGED = "keysChanged"  # the section listens for it (hx-trigger="keysChanged from:body")


USED_FORMS = "used_key_forms"  # session: the last few create forms already answered
USED_FORMS_KEPT = 20


class KeyForm(FlaskForm):
    # The service holds the rules (one place); maxlength and required only help the browser.
    form_once = HiddenField(default=lambda: secrets.token_urlsafe(16))
    name = StringField(
        "Name",
        render_kw={"maxlength": keys.NAME_MAX, "required": True, "placeholder": "e.g. CI pipeline",
                   "autocomplete": "off", "spellcheck": "false", "data-count": keys.NAME_MAX},
    )
    # Expiry (SPEC §4): the date is used when "Custom date" is chosen; both work without JS.
    expires = SelectField(
        "Expires",
        choices=[SelectChoice(keys.NEVER, "Never"),
                 *(SelectChoice(str(d), f"{d} days") for d in keys.EXPIRY_DAYS),
                 SelectChoice(keys.CUSTOM, "Custom date")],
        default=keys.NEVER, validate_choice=False,
    )
    expires_on = StringField("Expiry date (UTC)", render_kw={"type": "date"})


REVOKED_SHOWN_FIRST = 3  # past this many revoked keys, the older ones fold behind a link


def _revoked_shown() -> bool:
    """Whether the page the admin is on shows every revoked key (?revoked=shown): from the
    request itself, else (a revoke's or a refresh's htmx request) from the page's address."""
    if request.values.get("revoked"):
        return request.values.get("revoked") == "shown"
    page = request.headers.get("HX-Current-URL", "")
    return parse_qs(urlsplit(page).query).get("revoked") == ["shown"]


def _groups(listed, just_revoked=None, shown=False):
    """Active keys (newest first) and the history group: revoked and expired keys, the one
    that ended most recently first (ApiKey.ended_at). A key revoked by this very request stays
    where the admin saw it, marked revoked; the most recent ended keys are always shown, older
    ones fold unless `shown`."""
    now = utcnow()
    active = sorted((k for k in listed if k.active_at(now) or k.id == just_revoked),
                    key=lambda k: k.created_at, reverse=True)
    ended = sorted((k for k in listed if not k.active_at(now) and k.id != just_revoked),
                   key=lambda k: k.ended_at, reverse=True)
    can_fold = len(ended) > REVOKED_SHOWN_FIRST
    visible = ended if shown or not can_fold else ended[:REVOKED_SHOWN_FIRST]
    return active, visible, sum(1 for k in listed if not k.active_at(now)), can_fold


def _history_words(listed) -> str:
    """What the history group holds, in the words of its heading and its fold link."""
    expired = any(k.is_expired for k in listed)
    revoked = any(k.revoked_at is not None for k in listed)
    return "revoked and expired" if expired and revoked else "expired" if expired else "revoked"


def _allowed(ctx) -> bool:
    return rules.can_manage_keys(ctx.role, ctx.plan)


def _section(ctx, status=200, notice=None, notice_level="success"):
    return page_or_fragment(
        "settings/api_keys.html", "settings/_api_keys.html", status,
        **_section_context(ctx, notice, notice_level),
    )


def _section_context(ctx, notice=None, notice_level="success", just_revoked=None) -> dict:
    active = keys.count_active(ctx.workspace.id)
    listed = keys.list_keys(ctx.workspace.id)
    shown = _revoked_shown()
    active_rows, revoked_rows, revoked_count, can_fold = _groups(listed, just_revoked, shown)
    return {
        "keys": listed,
        "active_rows": active_rows,
        "revoked_rows": revoked_rows,
        "revoked_count": revoked_count,
        "revoked_folded": revoked_count - len(revoked_rows) - (just_revoked is not None),
        "revoked_shown": shown and can_fold,
        "history_words": _history_words(listed),
        "just_revoked": just_revoked,
        "refresh_url": url_for("settings.api_keys", revoked="shown" if shown else None),
        "revoke_first": keys.revoke_first(listed),
        "active_count": active,
        "max_keys": keys.MAX_ACTIVE_KEYS,
        "at_cap": keys.cap_reached(active),
        "notice": notice,
        "notice_level": notice_level,  # success, or warning when nothing was done
        "leak_alerts": leaks.open_alerts(ctx.workspace.id),
        "stale_before": utcnow() - timedelta(days=30),  # unused this long: a candidate to revoke
        "api_base": request.host_url.rstrip("/") + API_PREFIX,  # for "Where to go next"
    }


def _create_dialog(ctx, form, status=200):
    now = utcnow()  # the dates a key may expire on: today to a year ahead (the browser's hint)
    form.expires_on.render_kw = {**form.expires_on.render_kw, "min": now.date().isoformat(),
                                 "max": keys.latest_expiry_day(now).isoformat()}
    at_cap = keys.cap_reached(keys.count_active(ctx.workspace.id))
    return dialog_or_page(
        "settings/_key_create_dialog.html", status, form=form, max_keys=keys.MAX_ACTIVE_KEYS,
        max_name=keys.NAME_MAX,
        at_cap=at_cap, revoke_first=keys.revoke_first(keys.list_keys(ctx.workspace.id)) if at_cap else None,
    )


@bp.route("/api-keys")
def api_keys():
    return _section(gate(_allowed))


@bp.route("/api-keys/new")
def api_keys_new():
    ctx = gate(_allowed)
    # ?name= pre-fills a suggested name (the leak alert's "Create replacement").
    return _create_dialog(ctx, KeyForm(formdata=None, name=request.args.get("name", "")[:keys.NAME_MAX]))


@bp.route("/api-keys", methods=["POST"])
def api_keys_create():
    ctx = gate(_allowed)
    form = KeyForm()
    # Each create form carries a one-time token: reloading the reveal page without JavaScript
    # re-sends the POST, which must not mint a second key nobody will ever see.
    once = form.form_once.data or ""
    if once and once in session.get(USED_FORMS, []):
        return _section(ctx, 200, notice=(
            "That key was already created, and for your security it cannot be shown again. "
            "If you did not copy it, revoke it and create a new one."
        ), notice_level="warning")
    try:
        expires_at = keys.choose_expiry(form.expires.data, form.expires_on.data)
        created = keys.create_key(ctx.workspace.id, current_user.id, form.name.data, ip=client_ip(),
                                  expires_at=expires_at)
    except Forbidden:
        raise  # not a form error: the page's 404, as for anyone the section is hidden from
    except DomainError as err:
        if err.field:
            getattr(form, err.field).errors = [err.message]
        else:
            form.form_errors.append(err.message)
        return _create_dialog(ctx, form, 422)
    if once:
        session[USED_FORMS] = [*session.get(USED_FORMS, []), once][-USED_FORMS_KEPT:]
    # The only response that ever holds the clear key: a POST answer (never a URL, a redirect,
    # the session or a flash), kept out of every cache and out of htmx's history snapshots.
    body, status = dialog_or_page(
        "settings/_key_reveal_dialog.html", key=created.key, clear=created.clear
    )
    response = make_response(body, status)
    response.headers["Cache-Control"] = "no-store"
    return hx(response, trigger=KEYS_CHANGED) if is_htmx() else response


@bp.route("/api-keys/<key_id>/revoke")
def api_keys_revoke_confirm(key_id):
    ctx = gate(_allowed)
    return dialog_or_page("settings/_key_revoke_dialog.html", key=keys.get_key(ctx.workspace.id, key_id),
                          revoked_shown=_revoked_shown())


@bp.route("/api-keys/<key_id>/revoke", methods=["POST"])
def api_keys_revoke(key_id):
    ctx = gate(_allowed)
    key = keys.revoke_key(ctx.workspace.id, key_id, current_user.id, ip=client_ip())
    message = f"“{key.name}” was revoked. Applications using it can no longer authenticate."
    if not is_htmx():
        flash(message, "success")
        return redirect(url_for("settings.api_keys", revoked="shown" if _revoked_shown() else None,
                                _anchor=f"key-{key.id}"), code=303)
    # Close the dialog and redraw the section in place: the revoked row stays where it was,
    # marked revoked, and takes the focus; the notice is read out.
    body = render_template("settings/_api_keys.html",
                           **_section_context(ctx, notice=message, just_revoked=key.id))
    return hx(make_response(body), trigger="closeDialog", retarget="#api-keys", reswap="outerHTML")


@bp.route("/api-keys/scanner")
def api_keys_scanner():
    gate(_allowed)
    return dialog_or_page("settings/_key_scanner.html")


@bp.route("/api-keys/alerts/<alert_id>/dismiss", methods=["POST"])
def api_keys_alert_dismiss(alert_id):
    ctx = gate(_allowed)
    leaks.dismiss_alert(ctx.workspace.id, alert_id, current_user.id, ip=client_ip())
    message = "Alert dismissed. The key stays revoked."
    if not is_htmx():
        flash(message, "success")
        return redirect(url_for("settings.api_keys"), code=303)
    body = render_template("settings/_api_keys.html", **_section_context(ctx, notice=message))
    return hx(make_response(body), retarget="#api-keys", reswap="outerHTML")


@bp.route("/api-keys/<key_id>")
def api_keys_detail(key_id):
    """The key's detail (SPEC §9): a dialog with htmx, a page without JavaScript."""
    ctx = gate(_allowed)
    key = keys.get_key(ctx.workspace.id, key_id)
    usage = key_usage.for_key(key.id)
    scale = key_usage.axis(usage.peak)
    return dialog_or_page("settings/_key_detail_dialog.html", key=key, usage=usage, scale=scale,
                          bars=key_usage.bars(usage, 120, 8, top=scale[-1]),
                          flush_interval=current_app.config["USAGE_FLUSH_INTERVAL"])
