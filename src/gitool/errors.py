"""Exceptions that carry a message meant for the user."""


class InputError(Exception):
    """Bad input: a file, line or option the user can fix.

    The CLI prints the message as ONE line and exits with code 2; the message must name
    the file/line/option and say what to do.
    """


class RunFailure(Exception):
    """A job that failed outside gitool's control (e.g. a training process was killed).

    The CLI prints the message as one line and exits with code 1, without the
    "please report it" note of internal errors.
    """
