"""The errors users can cause; the CLI prints them as one line and exits 1."""


class UserError(Exception):
    """Bad input, missing data, a board that does not answer: anything a user can fix."""


class ModelRefused(UserError):
    """A compiler or runtime cannot take this model (an op, a type, a shape it lacks):
    a fact about the model, recorded as such, not a failure of the machine."""
