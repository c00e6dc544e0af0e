from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.exceptions import TooManyRequests

from ..services import accounts
from ..services.passwords import check_password
from . import bp, throttle
from .forms import LoginForm, LogoutForm

FAILED = 422  # a failed sign-in re-renders the form with this status


def _safe_next(target: str | None) -> str:
    # Only same-site paths: never an open redirect, and no control characters (urlsplit drops
    # CR/LF/TAB before parsing, so check the string itself; they cannot go in a header).
    if target and any(ord(c) < 32 or ord(c) == 127 for c in target):
        return url_for("dashboard.dashboard")
    if target and target.startswith("/") and not target.startswith("//"):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and "\\" not in target:
            return target
    return url_for("dashboard.dashboard")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated and request.method == "GET":
        return redirect(url_for("dashboard.dashboard"))
    form = LoginForm()
    if request.method == "POST":
        # Counted before the password is checked, refunded on success (fvapp/auth/throttle.py).
        email = accounts.normalize_email(request.form.get("email", ""))
        attempt = throttle.count_attempt(email)
        if not attempt.allowed:
            raise TooManyRequests(retry_after=attempt.retry_after)
        if form.validate_on_submit():
            user = accounts.authenticate(form.email.data, form.password.data)
            if user is not None:
                throttle.refund(attempt)
                next_url = _safe_next(request.args.get("next"))
                session.clear()  # no fixation: nothing from before sign-in survives it
                login_user(user)
                response = redirect(next_url, code=303)
                throttle.remember_device(response, email)
                return response
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
        return redirect(url_for("dashboard.dashboard"))
    accounts.end_all_sessions(current_user._get_current_object())
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"), code=303)
