"""Writing outputs safely: never over what the command did not make, never half-written.

**Claiming** (before any work starts): a command lists its inputs and claims each output
through one :class:`Outputs`. A new target must be creatable (:func:`check_writable`); an
existing one is refused unless ``force``, and even then a file is replaced only when gitool
made it and nobody changed it since (its folder's record, :mod:`gitool.made`), a folder only
when it is an earlier output of the same kind (a store by a store) holding only the files
gitool put there, unchanged (:func:`stray_entry`); nothing is ever written
on, into, or over a folder holding one of the command's inputs, with or without ``force``.

**Staging**: a folder is built in a hidden sibling and renamed into place
(:func:`staged_folder`, :func:`replace_folder`); a file through a temporary sibling
(:func:`staged_file`, used by :func:`write_tsv`, PNGs, checkpoints and attention indexes).
A target that appears while the command runs is kept and the command stops (exit 2), so
two runs writing to one path never both report success.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from fnmatch import fnmatchcase
from pathlib import Path

import pandas as pd

from gitool.errors import InputError, naming_a_full_disk, opt
from gitool.made import RECORD, made_by_gitool, record

KINDS = ("bigWig", "npz", "PNG", "checkpoint", "TSV", "bedGraph", "JSON", "YAML", "JSONL", "text")
TEXT_KINDS = ("TSV", "bedGraph", "JSON", "YAML", "JSONL", "text")
COMPRESSED = (".gz", ".bgz", ".bz2", ".xz", ".zst")  # names a text output may not end with


# What an output folder holds: entry name patterns (fnmatch), each to None for a file or
# to the layout of a folder.
Layout = Mapping[str, "Layout | None"]


def stray_entry(folder: Path, layout: Layout) -> Path | None:
    """The first entry of ``folder`` (depth first) that ``layout`` does not name — or a
    link, a folder where a file belongs and the other way round, or a file gitool did not
    put there or that changed since (:func:`gitool.made.made_by_gitool`: a figure or table
    the user edited inside an earlier output); None when the folder holds only gitool's own
    files the layout names, and its records of them (:mod:`gitool.made`): what ``force`` may
    replace. A folder without a record (an output of a gitool from before output folders
    recorded their files) is held to its layout only."""
    recorded = (folder / RECORD).is_file()
    for entry in sorted(folder.iterdir()):
        if entry.name == RECORD and entry.is_file() and not entry.is_symlink():
            continue  # gitool's own record of files it wrote there (gitool.made)
        pattern = next((p for p in layout if fnmatchcase(entry.name, p)), None)
        if pattern is None or entry.is_symlink():
            return entry
        inner = layout[pattern]
        if inner is None:
            if not entry.is_file() or (recorded and not made_by_gitool(entry)):
                return entry
        elif not entry.is_dir():
            return entry
        elif (stray := stray_entry(entry, inner)) is not None:
            return stray
    return None


def record_folder(folder: Path) -> None:
    """Record every file under ``folder`` as gitool's, each in its own folder's record (a
    staged output folder, before it is renamed into place: the names and times stay)."""
    record((path, path) for path in sorted(folder.rglob("*"))
           if path.name != RECORD and path.is_file() and not path.is_symlink())  # fmt: skip


class Outputs:
    """The outputs one run of a command may write, checked before any work starts.

    ``inputs`` (files or folders: genome, tracks, bigWigs, stores, runs, checkpoints) are
    never written on or into, and no output folder that holds one is ever replaced.
    """

    def __init__(
        self, force: bool = False, inputs: Iterable[str | Path | None] = (),
        force_option: bool = True,
    ) -> None:  # fmt: skip
        self.force = force
        # False: the command has no --force (train's run folder rules decide), so its
        # messages do not name one
        self._has_force = force_option
        # Indexed, so that checking each of thousands of outputs (one bigWig per track)
        # against thousands of inputs costs a few set look-ups, not a scan of them all.
        self._inputs: dict[Path, None] = {}  # resolved inputs, in the order given
        self._input_ids: dict[tuple[int, int], Path] = {}  # (device, inode) -> input
        self._input_parents: dict[Path, Path] = {}  # each folder above an input -> that input
        self._claimed: dict[Path, bool] = {}  # resolved output -> is a folder
        self._claimed_parents: dict[Path, Path] = {}  # each folder above an output -> it
        self.protect(*inputs)

    def protect(self, *paths: str | Path | None) -> None:
        """Add inputs (None is ignored)."""
        for path in paths:
            if path is None or str(path) == "":
                continue
            source = Path(path).resolve()
            if source in self._inputs:
                continue
            self._inputs[source] = None
            identity = _identity(source)
            if identity is not None:
                self._input_ids.setdefault(identity, source)
            for parent in source.parents:
                self._input_parents.setdefault(parent, source)

    def _check_not_input(self, path: Path, field: str) -> None:
        target = path.resolve()
        identity = _identity(path)
        source, what = None, ""
        if target in self._inputs or (identity is not None and identity in self._input_ids):
            source = target if target in self._inputs else self._input_ids[identity]
            what = f"is one of this command's inputs ({source})"
        else:
            inside = next((p for p in target.parents if p in self._inputs), None)
            if inside is not None:
                source, what = inside, f"lies inside {inside}, one of this command's inputs"
            elif target in self._input_parents and path.exists():
                source = self._input_parents[target]
                what = f"holds {source}, one of this command's inputs"
        if source is not None:
            forced = f", even with {opt('force')}" if self._has_force else ""
            raise InputError(
                f"{path} {what}; gitool never writes over its inputs{forced} — choose another path",
                field=field,
            )

    def _check_not_claimed(self, path: Path, field: str, folder: bool) -> None:
        """Two outputs of one command never share a path, nor lie in an output folder."""
        target = path.resolve()
        other = None
        if target in self._claimed:
            other = target
        else:
            other = next((p for p in target.parents if self._claimed.get(p)), None)
            if other is None and folder and target in self._claimed_parents:
                other = self._claimed_parents[target]
        if other is not None:
            raise InputError(
                f"{path} collides with {other}, another output of this command; give "
                "each output its own path",
                field=field,
            )
        self._claimed[target] = folder
        for parent in target.parents:
            self._claimed_parents.setdefault(parent, target)

    def file(self, path: str | Path, kind: str, field: str = "out") -> Path:
        """Claim the file ``path`` (a ``kind`` file: one of :data:`KINDS`) for writing; with
        ``force`` an existing one is replaced only when gitool made it and nobody changed it
        since (:func:`gitool.made.made_by_gitool`). Once written, it is recorded as gitool's."""
        if kind not in KINDS:
            raise ValueError(f"unknown output kind {kind!r}")
        path = Path(path)
        if path.name == RECORD or path.name.startswith(f".{RECORD}."):
            raise InputError(
                f"{path}: {RECORD} is gitool's record of the files it wrote in that folder; "
                "choose another name",
                field=field,
            )
        self._check_not_input(path, field)
        self._check_not_claimed(path, field, folder=False)
        suffix = next((s for s in COMPRESSED if path.name.lower().endswith(s)), None)
        if kind in TEXT_KINDS and suffix:
            raise InputError(
                f"{path}: gitool writes {kind} uncompressed, so a {suffix} name would be "
                f"wrong; give a name without {suffix} (compress the file afterwards)",
                field=field,
            )
        check_writable(path, field)
        if path.is_dir():
            raise InputError(f"{path} is a folder; give a file name", field=field)
        if path.is_symlink():
            raise InputError(
                f"{path} is a symbolic link, so gitool did not make it; refusing to replace "
                f"it even with {opt('force')} — choose another path",
                field=field,
            )
        if path.exists():  # a file gitool did not make is refused first: --force would not do
            if not made_by_gitool(path):
                raise InputError(
                    f"{path} exists and gitool did not make it (or it changed since: "
                    f"{RECORD} beside it lists what gitool wrote there); refusing to replace "
                    f"it even with {opt('force')} — delete it yourself or choose another path",
                    field=field,
                )
            if not self.force:
                raise InputError(
                    f"{path} already exists; pass {opt('force')} to replace it", field=field
                )
        _CLAIMED[path.resolve()] = path.exists()
        _RECORDED.add(path.resolve())
        return path

    def folder(
        self, path: str | Path, is_previous: Callable[[Path], bool], previous: str,
        field: str = "out", layout: Layout | None = None,
    ) -> Path:  # fmt: skip
        """Claim the folder ``path``; with ``force`` an existing one is replaced only when
        it is empty or ``is_previous`` (an earlier output of the same kind, ``previous``)
        holding nothing but what ``layout`` names (:func:`stray_entry`), when given."""
        path = Path(path)
        self._check_not_input(path, field)
        self._check_not_claimed(path, field, folder=True)
        check_writable(path, field)
        check_output_folder(path, self.force, is_previous, previous, field, layout)
        _CLAIMED[path.resolve()] = path.exists()
        return path


# Whether each output this process claimed existed when it was claimed (resolved path ->
# bool, as Outputs keys its claims): staging consults it, so that a file or folder that
# appears while the command runs is kept and the command stops, even when it appears before
# the output is written.
_CLAIMED: dict[Path, bool] = {}
# The files claimed through Outputs.file (resolved): recorded as gitool's once committed.
_RECORDED: set[Path] = set()


def existed_when_claimed(path: str | Path) -> bool:
    """Whether ``path`` existed when this process claimed it (:class:`Outputs`); a path
    never claimed: whether it exists now."""
    path = Path(path)
    return _CLAIMED.get(path.resolve(), path.exists())


def _made(path: Path) -> None:
    """``path`` is now this process's own output: writing it again replaces it."""
    key = path.resolve()
    if key in _CLAIMED:
        _CLAIMED[key] = True


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino)


def _appeared(path: Path) -> InputError:
    return InputError(
        f"{path} appeared while gitool was writing it (another run?); kept it and stopped — "
        "remove it or choose another path"
    )


def replace_folder(tmp: Path, out: Path, existed: bool = True) -> None:
    """Move the finished folder ``tmp`` to ``out``, its files recorded as gitool's
    (:func:`record_folder`); an old ``out`` goes only after. When ``out`` did not exist at
    the start (``existed`` False) and does now, it is kept, ``tmp`` is removed and
    :class:`InputError` raised."""
    if out.exists() and not existed:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _appeared(out)
    record_folder(tmp)
    if out.exists():
        trash = out.parent / f".{out.name}.old-{os.getpid()}"
        out.rename(trash)
        try:
            tmp.rename(out)
        except BaseException:
            trash.rename(out)  # put the old folder back before giving up
            raise
        shutil.rmtree(trash)
        return
    try:
        tmp.rename(out)
    except OSError as err:  # a non-empty folder appeared between the check and the rename
        if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
        shutil.rmtree(tmp, ignore_errors=True)
        raise _appeared(out) from None


def stale_stages(out: Path) -> list[Path]:
    """Hidden staging siblings of ``out`` left by killed runs (their process is gone)."""
    stale = []
    for sibling in out.parent.glob(f".{out.name}.*-*"):
        kind, _, pid = sibling.name[len(out.name) + 2 :].rpartition("-")
        if kind in ("partial", "old", "tmp") and pid.isdigit() and not process_alive(int(pid)):
            stale.append(sibling)
    return stale


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one of another user's counts: it cannot be checked)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_stages(out: Path) -> None:
    """Delete what :func:`stale_stages` finds."""
    for stage in stale_stages(out):
        if stage.is_dir():
            shutil.rmtree(stage, ignore_errors=True)
        else:
            stage.unlink(missing_ok=True)


@contextmanager
def staged_folder(out: str | Path, existed: bool | None = None) -> Iterator[Path]:
    """Yield an empty hidden sibling of ``out`` to write into (stale stages of killed runs
    are removed first); on success it replaces ``out`` (:func:`replace_folder`: kept, with an
    error, if it appeared meanwhile), on any failure it is removed. ``existed``: whether
    ``out`` existed when it was claimed (None: now)."""
    out = Path(out)
    created = make_folders(out.parent)
    remove_stale_stages(out)
    existed = existed_when_claimed(out) if existed is None else existed
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        with naming_a_full_disk(out):
            yield tmp
        replace_folder(tmp, out, existed=existed)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        remove_folders(created)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _made(out)


def commit_file(tmp: Path, path: Path, replace: bool) -> None:
    """Put the finished file ``tmp`` at ``path``: atomically replacing an old one when
    ``replace``, else only if ``path`` is still free (a file that appeared meanwhile is
    kept and :class:`InputError` raised)."""
    if replace:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # fails if path exists: no window in which a file is replaced
    except FileExistsError:
        raise _appeared(path) from None
    except OSError:  # a file system without hard links
        if path.exists():
            raise _appeared(path) from None
        os.replace(tmp, path)
        return
    tmp.unlink()


def commit_files(pairs: Iterable[tuple[Path, Path]]) -> None:
    """Put several finished files (``(tmp, path)`` pairs) in place, all or none: every
    ``path`` is checked first (one that appeared since it was claimed, or became a folder,
    is kept and :class:`InputError` raised before anything is renamed), then each is
    committed (:func:`commit_file`). Inside :func:`committed_together`, they wait for the
    block's end with the others."""
    _commit_all([(Path(tmp), Path(path), existed_when_claimed(path)) for tmp, path in pairs])


def _commit_all(items: list[tuple[Path, Path, bool]]) -> None:
    """``(tmp, path, existed)`` triples: :func:`commit_files`."""
    deferred = _deferred()
    if deferred is not None:
        waiting = {path for _, path, _ in deferred}
        twice = next((path for _, path, _ in items if path in waiting), None)
        if twice is not None:  # its temporary file would be the same one
            raise ValueError(f"{twice} is staged twice in one committed_together block")
        deferred.extend(items)
        return
    for _, path, existed in items:
        if path.is_dir() or (path.exists() and not existed):
            raise _appeared(path)
    # recorded first: a run stopped part-way through its renames leaves none of its own
    # files unrecorded (a line whose file never arrives matches nothing). A temporary file
    # that is itself the target of an earlier rename (a figure staged into another staged
    # file) is read at the start of that chain.
    source = {path: tmp for tmp, path, _ in items}
    finished = []
    for tmp, path, _ in items:
        if path.resolve() in _RECORDED:
            while tmp in source:
                tmp = source.pop(tmp)
            finished.append((path, tmp))
    record(finished)
    for tmp, path, existed in items:
        commit_file(tmp, path, replace=existed)
        _made(path)


_TOGETHER = threading.local()  # per thread: the files waiting for their block's end


def _writing() -> list[Path]:
    """The files this thread is writing through :func:`staged_file` now, outermost first."""
    if not hasattr(_TOGETHER, "writing"):
        _TOGETHER.writing = []
    return _TOGETHER.writing


def _deferred() -> list[tuple[Path, Path, bool]] | None:
    return getattr(_TOGETHER, "pending", None)


@contextmanager
def committed_together() -> Iterator[None]:
    """The files this thread stages inside the block (:func:`staged_file`,
    :func:`commit_files`: TSVs, PNGs, bigWigs...) are put in place together when it ends,
    and none of them if it fails (an error, Ctrl-C or SIGTERM): a command's outputs are
    never left half new, half old or half there, nor the folders staging created for them.
    A block inside another joins it."""
    if _deferred() is not None:
        yield
        return
    pending: list[tuple[Path, Path, bool]] = []
    created: list[Path] = []
    _TOGETHER.pending, _TOGETHER.created = pending, created
    try:
        try:
            yield
        finally:
            _TOGETHER.pending = _TOGETHER.created = None
        _commit_all(pending)
    except BaseException:
        for tmp, _, _ in pending:
            tmp.unlink(missing_ok=True)
        remove_folders(created)
        raise
    finally:
        for tmp, _, _ in pending:
            tmp.unlink(missing_ok=True)


def folders_made_for(created: list[Path]) -> None:
    """Folders made for files committed through :func:`commit_files`: inside
    :func:`committed_together` the block removes them if it fails (the files' renames wait
    for its end)."""
    if _deferred() is not None:
        _TOGETHER.created.extend(created)


def make_folders(folder: Path) -> list[Path]:
    """Create ``folder`` and the missing folders above it; returns those it created,
    outermost first (for :func:`remove_folders`)."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    for path in reversed(missing):
        path.mkdir(exist_ok=True)
    return missing[::-1]


def remove_folders(created: list[Path]) -> None:
    """Remove folders :func:`make_folders` created, deepest first; one that holds anything
    (another command's file, say) stays."""
    for folder in reversed(created):
        with suppress(OSError):
            folder.rmdir()


@contextmanager
def staged_file(path: str | Path) -> Iterator[Path]:
    """Yield a hidden temporary sibling of ``path`` to write; on success it takes ``path``'s
    place (:func:`commit_file`; a file that appeared since ``path`` was claimed, or since
    now if it was not, is kept), on any failure it is removed (an old ``path`` stays), and
    so are the folders made for it. A full disk is reported naming ``path``."""
    path = Path(path)
    created = make_folders(path.parent)
    together = _deferred()
    if together is not None:
        _TOGETHER.created.extend(created)  # removed by the block if it fails
    existed = existed_when_claimed(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    writing = _writing()
    writing.append(path)
    try:
        # a full disk names every file being written (`with staged_file(a), staged_file(b)`:
        # a failed write() does not say which)
        with naming_a_full_disk(" or ".join(map(str, writing))):
            try:
                yield tmp
            finally:
                writing.remove(path)
        _commit_all([(tmp, path, existed)])  # inside committed_together: with the others
    except BaseException:
        tmp.unlink(missing_ok=True)
        if together is None:
            remove_folders(created)
        raise
    if together is None:
        tmp.unlink(missing_ok=True)  # (renamed already; a hard link's source is removed)


def write_tsv(frame: pd.DataFrame, path: str | Path, index: bool = False) -> Path:
    """``frame`` as a tab-separated file (floats to 6 significant digits), atomically."""
    with staged_file(path) as tmp:
        frame.to_csv(tmp, sep="\t", index=index, float_format="%.6g")
    return Path(path)


def check_output_folder(
    out: Path, force: bool, is_previous: Callable[[Path], bool], previous: str,
    field: str = "out", layout: Layout | None = None,
) -> None:  # fmt: skip
    """Refuse ``out`` unless it is new, or ``force`` is set and it is an empty folder or
    ``is_previous(out)``: an earlier output of the same command (named by ``previous``),
    holding nothing ``layout`` (when given) does not name. ``force`` never deletes a
    folder of the user's own files, nor one of the user's files put into an earlier
    output, nor the current folder."""
    if out.is_symlink():  # replacing it would replace the link, not what it points to
        raise InputError(
            f"{out} is a symbolic link, so gitool did not make it; give the folder it points "
            f"to ({out.resolve()}) or another {opt(field)}",
            field=field,
        )
    if not out.exists():
        return
    if not out.is_dir():
        raise InputError(f"{out} is a file; give a folder", field=field)
    here = Path.cwd().resolve()
    if out.resolve() in (here, *here.parents):
        raise InputError(
            f"{out} is the current folder or holds it, so it cannot be replaced; "
            f"choose another {opt(field)}",
            field=field,
        )
    if any(out.iterdir()) and not is_previous(out):  # refused first: --force would not do
        raise InputError(
            f"{out} is a non-empty folder that is not {previous}; refusing to replace it "
            f"even with {opt('force')} — choose another {opt(field)}",
            field=field,
        )
    stray = None if layout is None else stray_entry(out, layout)
    if stray is not None:
        raise InputError(
            f"{out} is {previous} but also holds {stray.relative_to(out)}, which gitool did "
            f"not write there or which was changed since (a copy made without its times, "
            f"`cp -r`, counts as changed); refusing to replace it even with {opt('force')} — "
            f"move it out of {out} or delete the folder yourself, or choose another "
            f"{opt(field)}",
            field=field,
        )
    if not force:
        raise InputError(f"{out} already exists; pass {opt('force')} to replace it", field=field)


def check_writable(path: str | Path, field: str = "out") -> None:
    """Fail early, before any work, when ``path`` could not be created or replaced: a
    component above it is a file, or the nearest existing folder above it (where outputs
    are staged and renamed into place) does not let this user create files — tried for
    real, so read-only mounts and pseudo file systems such as /proc are caught too."""
    path = Path(path).absolute()
    folder = next(p for p in path.parents if p.exists())
    if not folder.is_dir():
        raise InputError(
            f"{path}: {folder} is a file, not a folder; choose another path", field=field
        )
    try:
        handle, probe = tempfile.mkstemp(prefix=".gitool-probe-", dir=folder)
    except OSError as err:
        reason = os.strerror(err.errno) if err.errno else str(err)
        raise InputError(
            f"{path}: cannot write in {folder} ({reason.lower()}); choose another {opt(field)}",
            field=field,
        ) from None
    os.close(handle)
    os.unlink(probe)
