"""Exceptions shared by every layer. Importing this module never imports AiiDA."""


class SuperionicError(Exception):
    """Base class of every error raised by aiida-superionic."""


class InputError(SuperionicError, ValueError):
    """Bad user input: the message is one line that says what is wrong and, where possible, how to fix it."""


class TrajectoryFormatError(InputError):
    """A trajectory file that cannot be read: unknown format, broken header, truncated frame, NaN values."""


class MechanicalInstabilityError(InputError):
    """An elastic tensor that is not positive definite (the Born stability criteria fail)."""
