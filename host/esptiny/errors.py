"""The one error type users can cause; the CLI prints it as one line and exits 1."""


class UserError(Exception):
    """Bad input, missing data, a board that does not answer: anything a user can fix."""
