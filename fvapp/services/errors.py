class DomainError(Exception):
    """A rule refused the change. `field` names the input at fault, if one is."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(DomainError):
    """The thing does not exist in this workspace (or is not the caller's to see)."""

    def __init__(self, message: str = "Not found"):
        super().__init__(message)


class Forbidden(DomainError):
    """The actor's role may not do this."""
