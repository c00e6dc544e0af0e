from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField, TextAreaField

from ..services.initiatives import DESCRIPTION_MAX, TITLE_MAX


class InitiativeForm(FlaskForm):
    # Limits are enforced by the service (one rule, one place); maxlength and the hints (the
    # fields' descriptions) tell the person.
    title = StringField("Title", description=f"Up to {TITLE_MAX} characters.",
                        render_kw={"maxlength": TITLE_MAX, "required": True})
    description = TextAreaField(
        "Description (optional)", description=f"Optional, up to {DESCRIPTION_MAX:,} characters.",
        render_kw={"maxlength": DESCRIPTION_MAX, "rows": 3},
    )


class SwitchWorkspaceForm(FlaskForm):
    workspace_id = HiddenField()
