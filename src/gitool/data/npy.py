"""Store arrays on disk: writing ``.npy`` files row by row when the row count is known only
at the end, and opening them memory-mapped with a clear error when one is damaged.

The header is written with room to spare and rewritten in place on close, so rows stream
to disk (no memory map, no second copy) and the result is an ordinary ``.npy`` file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gitool.errors import InputError


def load_array(path: str | Path) -> np.ndarray:
    """A store's ``.npy`` file, memory-mapped read-only.

    Raises:
        InputError: the file is missing, not a ``.npy`` file, or shorter than its header says
            (an interrupted copy); the message names it and says to rebuild the store.
    """
    path = Path(path)
    try:
        return np.load(path, mmap_mode="r")
    except FileNotFoundError:
        raise InputError(f"{path} is missing; the store is incomplete, rebuild it") from None
    except (ValueError, OSError, EOFError) as err:
        raise InputError(
            f"{path} is damaged ({err}); the store was not copied or written completely, rebuild it"
        ) from None


_HEADER_BYTES = 128  # magic (6) + version (2) + length (2) + dict, padded; multiple of 64


def npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    text = f"{{'descr': {np.lib.format.dtype_to_descr(dtype)!r}, 'fortran_order': False, 'shape': {shape!r}, }}"
    body_len = _HEADER_BYTES - 10
    if len(text) + 1 > body_len:
        raise ValueError(f"npy header too long for shape {shape}")
    body = text.ljust(body_len - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + body_len.to_bytes(2, "little") + body.encode("latin1")


class NpyWriter:
    """Append rows of a fixed ``row_shape`` to a new ``.npy`` file.

    Example:
        >>> with NpyWriter(path, np.uint8, (17712,)) as w:
        ...     w.append(rows)  # (k, 17712)
    """

    def __init__(self, path: str | Path, dtype, row_shape: tuple[int, ...]):
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self.row_shape = tuple(row_shape)
        self.rows = 0
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed by close()/__exit__
        self._file.write(npy_header(self.dtype, (0, *self.row_shape)))

    def append(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.shape[1:] != self.row_shape:
            raise ValueError(f"row shape {rows.shape[1:]} != {self.row_shape}")
        self._file.write(rows.data)
        self.rows += rows.shape[0]

    def close(self) -> None:
        if self._file.closed:
            return
        self._file.seek(0)
        self._file.write(npy_header(self.dtype, (self.rows, *self.row_shape)))
        self._file.close()

    def __enter__(self) -> NpyWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
