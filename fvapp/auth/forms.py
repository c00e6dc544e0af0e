from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length, ValidationError

from ..services.accounts import EMAIL_MAX
from ..services.passwords import MAX_PASSWORD_BYTES, password_too_long


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired("Enter your email."), Length(max=EMAIL_MAX)])
    password = PasswordField("Password", validators=[DataRequired("Enter your password.")])

    def validate_password(self, field):
        if password_too_long(field.data or ""):
            raise ValidationError(
                f"Passwords are at most {MAX_PASSWORD_BYTES} bytes; this one is longer."
            )


class LogoutForm(FlaskForm):
    pass
