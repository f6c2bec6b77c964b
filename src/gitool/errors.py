"""Exceptions that carry a message meant for the user.

The library names options by their field names (``batch_size``); the CLI shows the
command's flags instead (``--batch-size``). An :class:`InputError` about one option says so
with ``field=``, and a message refers to any other option through :func:`opt`::

    raise InputError(f"{path} already exists; pass {opt('force')} to replace it", field="out")

``str(err)`` reads ``out data already exists; pass force to replace it``; ``gitool`` prints
``-o data already exists; pass --force to replace it``.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

_REF = re.compile("\ue000([A-Za-z_][A-Za-z0-9_]*)\ue001")


def opt(name: str) -> str:
    """A reference to the option (options-dataclass field) ``name`` inside a message."""
    return f"\ue000{name}\ue001"


def render(text: str, names: Mapping[str, str] | Callable[[str], str] | None = None) -> str:
    """``text`` with each :func:`opt` reference shown as ``names[field]`` (a mapping or a
    function; fields it lacks keep their own name). Status lines and warnings use it too."""
    if names is None:
        lookup: Callable[[str], str] = str
    elif callable(names):
        lookup = names
    else:
        lookup = lambda name: names.get(name, name)  # noqa: E731
    return _REF.sub(lambda m: lookup(m.group(1)), text)


class InputError(Exception):
    """Bad input: a file, line or option the user can fix.

    The CLI prints the message as ONE line and exits with code 2; the message must name
    the file/line/option and say what to do. ``field`` is the option it is about (the
    message then starts with that option's name).
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        self.field = field
        self.template = f"{opt(field)} {message}" if field else message
        super().__init__(self.render())

    @property
    def fields(self) -> list[str]:
        """Every option the message names, ``field`` first."""
        return _REF.findall(self.template)

    def render(self, names: Mapping[str, str] | Callable[[str], str] | None = None) -> str:
        """The message with each option shown as ``names[field]`` (see :func:`render`)."""
        return render(self.template, names)


class RunFailure(Exception):
    """A job that failed outside gitool's control (e.g. a training process was killed).

    The CLI prints the message as one line and exits with code 1, without the
    "please report it" note of internal errors.
    """


@contextmanager
def naming_a_full_disk(path: object) -> Iterator[None]:
    """A full disk or quota refusing a ``write()`` inside the block (an OSError without a
    file name) is raised as the same error naming ``path``, which the console prints as
    one line (exit 2); any other error passes as it is."""
    try:
        yield
    except OSError as err:
        if err.filename is not None or err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise OSError(err.errno, os.strerror(err.errno), str(path)) from err


LOW_SPACE = 32 << 20
"""Free bytes below which a failed write is taken for a full disk (libraries that say only
"error while writing", or crash: libBigWig, PyTorch's checkpoint writer)."""


def disk_full(path: object) -> bool:
    """Whether the file system holding ``path`` (or its nearest existing folder) has less
    than :data:`LOW_SPACE` free for this user."""
    path = Path(str(path))
    for folder in (path, *path.parents):
        if folder.exists():
            try:
                return shutil.disk_usage(folder).free < LOW_SPACE
            except OSError:
                return False
    return False


def full_disk_error(path: object) -> OSError:
    """The error a full disk raises, naming ``path`` (the console prints one line, exit 2)."""
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
