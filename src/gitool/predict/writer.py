"""Writing the bins of many tracks in the background, with a bounded number of open files.

A head of thousands of tracks (Enformer's human head has 5,313) would need one open bigWig
per track — past the usual limit of 1,024 open files per process — and would spend most of
its time compressing bigWig blocks in the thread that runs the model. :class:`TrackSetWriter`
writes the same files (byte for byte) differently:

- the tracks are split into groups of at most :func:`group_size` files (256 under the usual
  limit, a quarter of a lower one); no process ever holds more output files open than that;
- bigWigs are written by one writer process per group (``python -m gitool.predict.writer``,
  which imports numpy and pyBigWig only) holding that group's files, fed its columns over a
  pipe — the groups are compressed on several cores at once, and libBigWig, which can crash
  its process when a write fails (a full disk), never runs in the caller's; one group of
  bedGraph text is written by a writer thread;
- :meth:`TrackSetWriter.add` checks the bins (genome order, never past a chromosome end)
  and hands them over through a queue bounded in bytes (:data:`QUEUE_BYTES`), so that
  inference goes on while earlier bins are written;
- the temporary files (``.NAME.tmp-PID``, PID of this process) are created and renamed by
  this process: the outputs appear only when every group is complete. On any error —
  Ctrl-C and SIGTERM included — the writer thread stops, the writer processes are killed
  and every temporary file and created folder is removed. A failure of the writer thread or
  of a writer process is raised in the caller's thread, once, at the next ``add`` or at the
  end. Writer processes ignore Ctrl-C (the parent decides) and remove their files when
  their parent disappears.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import json
import os
import resource
import signal
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np

from gitool.errors import InputError, disk_full, full_disk_error, opt
from gitool.predict.bigwig import (
    BinChecker,
    TrackWriter,
    check_format,
    flush_bins_for,
)

MAX_OPEN_FILES = 256
"""Most output files (bigWig or bedGraph) one process holds open: a quarter of the usual
limit of 1,024, leaving room for the genome, the model, pipes and libraries."""
QUEUE_BYTES = 256 << 20
"""Bins waiting for the writer, in bytes (always room for one chunk, however large)."""
_FRAME = struct.Struct("<cIqqI")  # tag, chromosome index, start, end, bins
_PIPE_BYTES = 1 << 20  # pipe buffer asked for each writer process (Linux F_SETPIPE_SZ)


def open_file_limit() -> int:
    """This process's soft limit on open files (``ulimit -n``)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 1 << 20 if soft == resource.RLIM_INFINITY else int(soft)


def group_size(limit: int | None = None) -> int:
    """Most output files one process holds open under an open-file ``limit`` (default this
    process's): :data:`MAX_OPEN_FILES`, or a quarter of a lower limit."""
    limit = open_file_limit() if limit is None else limit
    return max(1, min(MAX_OPEN_FILES, limit // 4))


def open_fds() -> int | None:
    """Files this process has open now (Linux ``/proc/self/fd``; None elsewhere)."""
    try:
        return len(os.listdir("/proc/self/fd")) - 1  # less the listing's own
    except OSError:
        return None


class _Handover:
    """A FIFO of chunks bounded in bytes (always room for one item). ``fail`` (the writer
    side broke) makes ``put`` raise; ``stop`` (the caller gave up) makes ``get`` return
    None at once; ``close`` makes it return None once the items are taken."""

    def __init__(self, limit: int):
        self.items: deque[tuple[object, int]] = deque()
        self.size, self.limit = 0, limit
        self.cond = threading.Condition()
        self.error: BaseException | None = None
        self.closed = self.stopped = False
        self.waited = 0.0  # seconds put() spent waiting for room

    def put(self, item: object, nbytes: int) -> None:
        with self.cond:
            if self.items and self.size + nbytes > self.limit and self.error is None:
                began = time.perf_counter()
                while self.items and self.size + nbytes > self.limit and self.error is None:
                    self.cond.wait()
                self.waited += time.perf_counter() - began
            if self.error is not None:
                raise self.error
            self.items.append((item, nbytes))
            self.size += nbytes
            self.cond.notify_all()

    def get(self) -> object | None:
        with self.cond:
            while not self.items and not self.closed and not self.stopped:
                self.cond.wait()
            if self.stopped or not self.items:
                return None
            item, nbytes = self.items.popleft()
            self.size -= nbytes
            self.cond.notify_all()
            return item

    def fail(self, error: BaseException) -> None:
        with self.cond:
            self.error = error
            self.items.clear()
            self.cond.notify_all()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.items.clear()
            self.cond.notify_all()


class _Child:
    """A writer process for the tracks ``lo:hi`` (see :func:`main`)."""

    def __init__(self, owner: TrackSetWriter, lo: int, hi: int):
        self.owner, self.lo, self.hi = owner, lo, hi
        root = str(Path(__file__).resolve().parents[2])  # the folder holding gitool/
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1"}  # fmt: skip
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gitool.predict.writer"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
        )
        with contextlib.suppress(Exception):  # a larger pipe: fewer context switches
            import fcntl

            fcntl.fcntl(self.proc.stdin.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_BYTES)
        spec = {
            "paths": [str(p) for p in owner.paths[lo:hi]],
            "temps": [str(p) for p in owner.temps[lo:hi]],
            "sizes": list(owner.sizes.items()),
            "bin_size": owner.bin_size,
            "bedgraph": owner.bedgraph,
            "flush_bins": owner.flush_bins,
            "field": owner.field,
        }
        self._write((json.dumps(spec) + "\n").encode())
        self.status: dict | None = None

    def _write(self, data) -> None:
        try:
            self.proc.stdin.write(data)
        except OSError:  # BrokenPipeError: it stopped; its report says why
            raise self.failure() from None

    def send(self, index: int, start: int, end: int, values: np.ndarray) -> None:
        block = np.ascontiguousarray(values[:, self.lo : self.hi])
        self._write(_FRAME.pack(b"A", index, start, end, len(block)))
        self._write(memoryview(block).cast("B"))
        try:
            self.proc.stdin.flush()
        except OSError:
            raise self.failure() from None

    def finish(self) -> None:
        """Ask it to close its files (zoom levels and index); :meth:`result` waits."""
        self._write(_FRAME.pack(b"C", 0, 0, 0, 0))
        try:
            self.proc.stdin.close()
        except OSError:
            raise self.failure() from None

    def result(self) -> dict:
        """Its report once it has finished; raises its error if it failed."""
        output = self.proc.stdout.read()
        code = self.proc.wait()
        self.proc.stdout.close()  # its pipe, now: not when the cycle collector runs
        self.status = _last_json(output)
        if code != 0 or not (self.status or {}).get("ok"):
            raise self._error(code, output)
        return self.status

    def failure(self) -> BaseException:
        """Its error, after it stopped (or killing it when it has not)."""
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        output = self.proc.stdout.read() if self.proc.stdout else b""
        self.status = _last_json(output)
        return self._error(self.proc.returncode, output)

    def _error(self, code: int | None, output: bytes) -> BaseException:
        status = self.status or {}
        first, more = self.owner.paths[self.lo], self.hi - self.lo - 1
        where = f"{first} and {more} more" if more else str(first)
        if status.get("kind") == "InputError":
            return InputError(status["template"])
        if status.get("errno") in (errno.ENOSPC, errno.EDQUOT) or (
            "kind" not in status and disk_full(first)  # crashed (libBigWig) on a full disk
        ):
            if status.get("errno") == errno.EDQUOT:
                return OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), where)
            return full_disk_error(where)
        if "error" in status:
            kind = getattr(builtins, str(status.get("kind")), None)
            if not (isinstance(kind, type) and issubclass(kind, Exception)):
                kind = RuntimeError
            if issubclass(kind, OSError) and status.get("errno"):
                return kind(status["errno"], f"{status['error']} (writing {where})")
            return kind(f"{status['error']} (writing {where})")
        lines = output.decode(errors="replace").strip().splitlines()
        last = lines[-1] if lines else "no message"
        return RuntimeError(f"the writer process for {where} stopped (exit code {code}): {last}")

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()

    def reap(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        with contextlib.suppress(Exception):
            self.proc.wait(timeout=30)


def _last_json(output: bytes) -> dict | None:
    for line in reversed(output.decode(errors="replace").strip().splitlines()):
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, dict):
                return value
    return None


class TrackSetWriter:
    """Write bins of many tracks to one bigWig (or bedGraph) per track, in the background,
    never holding more than ``max_open`` output files open in one process (see the module
    docstring). The files are those :class:`~gitool.predict.bigwig.TrackWriter` writes.

    Use as a context manager, like :class:`~gitool.predict.bigwig.TrackWriter`: files appear
    when the block ends normally and are removed when it raises.

    Args:
        paths: one output file per track.
        sizes: every chromosome of the genome with its size, in genome order.
        bin_size: bp per bin.
        bedgraph: bedGraph text instead of bigWig.
        field: the option the paths came from, named in errors.
        max_open: output files per process (default :func:`group_size`).
        queue_bytes: bins waiting for the writer, at most (one chunk always fits).

    Attributes:
        bins_written: bins (of every track) handed over.
        stats: after the block: ``groups``, ``processes`` (writer processes), ``max_open``
            (output files per process at most), ``open_s`` (seconds to create the
            temporary files and headers), ``peak_fds`` (files open in the process
            that had the most: this one or a writer process; None off Linux),
            ``wait_s`` (seconds :meth:`add` waited for the writer), ``write_s`` (seconds
            the busiest writer spent adding bins and closing files), ``finish_s`` (seconds
            from the end of the last :meth:`add` to the files in place: the writing that
            did not overlap), ``process_rss_mib`` (peak memory of the largest writer
            process, with writer processes).
    """

    def __init__(
        self,
        paths: list[Path],
        sizes: dict[str, int],
        bin_size: int,
        bedgraph: bool = False,
        field: str = "out",
        max_open: int | None = None,
        queue_bytes: int = QUEUE_BYTES,
    ):
        self.paths = [Path(p) for p in paths]
        for p in self.paths:
            check_format(p, bedgraph, field)
        self.sizes, self.bin_size, self.bedgraph, self.field = (
            dict(sizes),
            bin_size,
            bedgraph,
            field,
        )
        n = len(self.paths)
        size = max(1, max_open or group_size())
        self.groups = [(lo, min(lo + size, n)) for lo in range(0, n, size)] or [(0, 0)]
        self.flush_bins = flush_bins_for(n)
        # bigWigs: writer processes (libBigWig may crash its process on a failed write);
        # bedGraph: a writer thread when one group is enough.
        self.processes = not bedgraph or len(self.groups) > 1
        # Prepares (folders, empty temporary files) and cleans up every file; writes them
        # itself without writer processes.
        self.files = TrackWriter(self.paths, sizes, bin_size, bedgraph, self.flush_bins, field)
        self.temps = self.files.temps
        self.checker = BinChecker(self.sizes, bin_size, n)
        self.index = {c: i for i, c in enumerate(self.sizes)}
        self.bins_written = 0
        self.stats: dict = {"groups": len(self.groups), "processes": 0, "max_open": size}
        self._queue = _Handover(queue_bytes)
        self._children: list[_Child] = []
        self._thread: threading.Thread | None = None
        self._busy = 0.0
        self._last_add = 0.0

    # ------------------------------------------------------------------ lifecycle

    def open(self) -> TrackSetWriter:
        """Create the temporary files; start the writer thread (and processes)."""
        began = time.perf_counter()
        try:
            if not self.processes:
                self.files.open()
                self.stats["peak_fds"] = open_fds()
            else:
                self._check_limit()
                self.files.prepare()  # the writer thread starts the processes
                self.stats["processes"] = len(self.groups)
            self.stats["max_open"] = max(hi - lo for lo, hi in self.groups)
            self.stats["open_s"] = time.perf_counter() - began
            self._thread = threading.Thread(target=self._run, name="gitool-writer", daemon=True)
            self._thread.start()
        except BaseException:
            self.abort()
            raise
        return self

    def _check_limit(self) -> None:
        limit, now = open_file_limit(), open_fds() or 0
        need = now + 2 * len(self.groups) + 16  # two pipes per writer process
        if need > limit:
            raise InputError(
                f"{len(self.paths):,} tracks need {len(self.groups)} writer processes of "
                f"{self.groups[0][1]} files each, and this process may open only {limit} files "
                f"(ulimit -n); raise the limit, or choose fewer {opt('tracks')}",
                field=self.field,
            )

    def __enter__(self) -> TrackSetWriter:
        return self.open()

    def __exit__(self, kind, error, traceback) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()

    def commit(self) -> list[Path]:
        """Write what is queued, close every file and rename them all into place."""
        try:
            if self._thread is None:
                raise ValueError("TrackSetWriter.commit before open()")
            began = time.perf_counter()
            self._queue.close()
            self._thread.join()
            if self._queue.error is not None:
                raise self._queue.error
            write_s = self._busy
            if self._children:
                for child in self._children:
                    child.finish()  # all close their files at once
                reports = [child.result() for child in self._children]
                write_s = max(r.get("busy_s", 0.0) for r in reports)
                self.stats["process_rss_mib"] = max(r.get("rss_mib") or 0.0 for r in reports)
                fds = [r.get("peak_fds") for r in reports] + [self.stats.get("peak_fds")]
                self.stats["peak_fds"] = max((f for f in fds if f is not None), default=None)
            else:
                self.files.finish()
            from gitool.files import commit_files, folders_made_for  # lazy: writer processes

            commit_files(zip(self.temps, self.paths, strict=True))
            folders_made_for(self.files.created)
            self.files.created = []
            now = time.perf_counter()
            self.stats.update(
                wait_s=self._queue.waited,
                write_s=write_s,
                finish_s=now - (self._last_add or began),
            )
        except BaseException:
            self.abort()
            raise
        return self.paths

    def abort(self) -> None:
        """Stop the writers and delete every temporary file (nothing is left behind)."""
        self._queue.stop()
        for child in list(self._children):
            child.kill()  # a write blocked on its pipe fails at once
        if self._thread is not None and self._thread.is_alive():
            self._thread.join()
        for child in self._children:
            child.kill()  # any the thread started meanwhile
            child.reap()
        self.files.abort()

    # ------------------------------------------------------------------ data

    def add(self, chrom: str, start: int, end: int, values: np.ndarray) -> None:
        """Hand over the bins of ``chrom:start-end`` (as
        :meth:`gitool.predict.bigwig.TrackWriter.add`; ``values`` must not change after).

        Raises:
            ValueError: bins out of genome order, overlapping, off the chromosome or of the
                wrong shape (a caller's bug).
            BaseException: what stopped the writer thread or a writer process, once.
        """
        if self._thread is None:
            raise ValueError("TrackSetWriter.add before open()")
        values = self.checker.check(chrom, start, end, values)
        self._queue.put((chrom, start, end, values), values.nbytes)
        self.bins_written += len(values)
        self._last_add = time.perf_counter()

    def _run(self) -> None:
        """The writer thread: starts the writer processes (while the model starts), then
        hands the chunks from the queue to the files or to the processes."""
        try:
            if self.processes:
                for lo, hi in self.groups:
                    if self._queue.stopped:
                        return
                    self._children.append(_Child(self, lo, hi))
                self.stats["peak_fds"] = open_fds()
            while (item := self._queue.get()) is not None:
                chrom, start, end, values = item
                began = time.perf_counter()
                if self._children:
                    index = self.index[chrom]
                    for child in self._children:
                        child.send(index, start, end, values)
                else:
                    self.files.add(chrom, start, end, values)
                self._busy += time.perf_counter() - began
        except BaseException as err:  # raised in the caller's thread
            self._queue.fail(err)


# --------------------------------------------------------------------------- writer process


def _read_into(source, buffer: memoryview) -> bool:
    """Fill ``buffer`` from ``source``; False at the end of the input."""
    done = 0
    while done < len(buffer):
        n = source.readinto(buffer[done:])
        if not n:
            return False
        done += n
    return True


def main() -> int:
    """A writer process: a JSON line (paths, temporary files, header, flush size), then
    frames ``A`` (bins of a chromosome run, float32 ``(n_bins, n_tracks)``) and ``C``
    (finish: close the files, report, exit 0). At the end of its input without ``C`` (the
    parent stopped or died) it removes its files and exits 1. Reports one JSON line."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which decides
    source = sys.stdin.buffer
    writer = None
    try:
        spec = json.loads(source.readline() or b"null")
        if spec is None:
            return 1
        writer = TrackWriter(
            [Path(p) for p in spec["paths"]], dict(spec["sizes"]), int(spec["bin_size"]),
            bool(spec["bedgraph"]), int(spec["flush_bins"]), str(spec["field"]),
            temps=[Path(p) for p in spec["temps"]],
        )  # fmt: skip
        writer.open(prepare=False)
        peak = open_fds()
        chroms, n_tracks, busy = list(writer.sizes), len(writer.paths), 0.0
        head = bytearray(_FRAME.size)
        while True:
            if not _read_into(source, memoryview(head)):
                writer.abort()
                return 1
            tag, index, start, end, n_bins = _FRAME.unpack(head)
            if tag == b"C":
                began = time.perf_counter()
                writer.finish()
                busy += time.perf_counter() - began
                _report({"ok": True, "peak_fds": peak, "busy_s": busy, "rss_mib": _peak_rss()})
                return 0
            values = np.empty((n_bins, n_tracks), dtype=np.float32)
            if not _read_into(source, memoryview(values).cast("B")):
                writer.abort()
                return 1
            began = time.perf_counter()
            writer.add(chroms[index], start, end, values)
            busy += time.perf_counter() - began
    except BaseException as err:
        # A failed libBigWig write (SystemError: NULL without an exception) on a full disk:
        # looked at before abort() frees the space of this process's files.
        full = writer is not None and not isinstance(err, OSError) and disk_full(writer.temps[0])
        if writer is not None:
            writer.abort()
        report = {"error": str(err) or type(err).__name__, "kind": type(err).__name__}
        if isinstance(err, InputError):
            report["template"] = err.template
        if isinstance(err, OSError) and err.errno:
            report.update(errno=err.errno, error=f"{err.strerror}: {err.filename or ''}")
        elif full:
            report.update(kind="OSError", errno=errno.ENOSPC, error=os.strerror(errno.ENOSPC))
        _report(report)
        return 1


def _peak_rss() -> float | None:
    """Peak memory of this process in MiB (``VmHWM``: ``ru_maxrss`` would count the memory
    of the parent it was started from, kept across exec); None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _report(status: dict) -> None:
    with contextlib.suppress(OSError):
        sys.stdout.write(json.dumps(status) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
