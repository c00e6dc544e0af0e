from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_required, login_user, logout_user

from ..extensions import limiter
from ..services import accounts
from ..services.passwords import check_password
from . import bp
from .forms import LoginForm, LogoutForm

FAILED = 422  # a failed sign-in re-renders the form with this status; only those are counted


def _email_key() -> str:
    return "login-email:" + accounts.normalize_email(request.form.get("email", ""))


def _failed(response) -> bool:
    return response.status_code == FAILED


def _safe_next(target: str | None) -> str:
    # Only same-site paths: never an open redirect, and no control characters (urlsplit drops
    # CR/LF/TAB before parsing, so check the string itself; they cannot go in a header).
    if target and any(ord(c) < 32 or ord(c) == 127 for c in target):
        return url_for("app.dashboard")
    if target and target.startswith("/") and not target.startswith("//"):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and "\\" not in target:
            return target
    return url_for("app.dashboard")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(
    lambda: current_app.config["LOGIN_LIMIT_PER_EMAIL"],
    key_func=_email_key,
    methods=["POST"],
    deduct_when=_failed,
    scope="login-email",
)
@limiter.limit(
    lambda: current_app.config["LOGIN_LIMIT_PER_IP"],
    key_func=get_remote_address,
    methods=["POST"],
    deduct_when=_failed,
    scope="login-ip",
)
def login():
    if current_user.is_authenticated and request.method == "GET":
        return redirect(url_for("app.dashboard"))
    form = LoginForm()
    if request.method == "POST":
        if form.validate_on_submit():
            user = accounts.authenticate(form.email.data, form.password.data)
            if user is not None:
                next_url = _safe_next(request.args.get("next"))
                session.clear()  # no fixation: nothing from before sign-in survives it
                login_user(user)
                return redirect(next_url, code=303)
            form.form_errors.append("That email and password do not match an account.")
        elif form.password.errors and form.email.data:
            # Too long for bcrypt: still one check, so timing says nothing about the account.
            check_password(form.password.data or "", None)
        return render_template("auth/login.html", form=form), FAILED
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    form = LogoutForm()
    if not form.validate_on_submit():
        return redirect(url_for("app.dashboard"))
    accounts.end_all_sessions(current_user._get_current_object())
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"), code=303)
