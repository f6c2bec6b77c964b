"""Reading TFRecord files without TensorFlow: framing, checksums and ``tf.train.Example``.

A TFRecord file is a sequence of records, each::

    u64 little-endian  length
    u32 little-endian  masked CRC32C of the 8 length bytes
    bytes[length]      payload
    u32 little-endian  masked CRC32C of the payload

with ``masked(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8`` (mod 2**32). The whole file
may be ZLIB- or GZIP-compressed (the Basenji/Enformer release uses ZLIB); compression is
detected from the first bytes. Both checksums of every record are verified (CRC32C by the
``crc32c`` package); a mismatch raises :class:`~gitool.errors.InputError` naming the file and
the record.

Payloads of the Basenji/Enformer release are ``tf.train.Example`` protobufs, parsed by
:func:`parse_example` with the ``protobuf`` package (the message schema is declared here,
field numbers as TensorFlow's ``example.proto`` and ``feature.proto`` define them).
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import crc32c

from gitool.errors import InputError, opt

COMPRESSIONS = ("auto", "zlib", "gzip", "none")
_MASK_DELTA = 0xA282EAD8
_CHUNK = 1 << 20  # compressed bytes read at a time


def masked_crc(data: bytes | memoryview) -> int:
    """TFRecord's masked CRC32C of ``data``."""
    crc = crc32c.crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


class _Inflate(io.RawIOBase):
    """A readable stream of the decompressed bytes of a ZLIB or GZIP file (``wbits``)."""

    def __init__(self, raw, wbits: int):
        self._raw = raw
        self._inflate = zlib.decompressobj(wbits)
        self._pending = b""  # compressed bytes not yet fed to the decompressor
        self.compressed_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        while True:
            if self._inflate.eof:
                return 0
            if not self._pending:
                self._pending = self._raw.read(_CHUNK)
                self.compressed_read += len(self._pending)
                if not self._pending:
                    raise EOFError("the compressed stream ends early")
            out = self._inflate.decompress(self._pending, len(view))
            self._pending = self._inflate.unconsumed_tail
            if out:
                view[: len(out)] = out
                return len(out)


def detect_compression(head: bytes) -> str:
    """``none``, ``gzip`` or ``zlib`` from a file's first 12 bytes: an uncompressed file
    starts with a record header whose length checksum matches (a 1 in 2**32 chance for
    anything else), a GZIP file with its magic bytes, a ZLIB file with a valid ZLIB header."""
    if len(head) >= 12 and masked_crc(head[:8]) == struct.unpack("<I", head[8:12])[0]:
        return "none"
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0:
        return "zlib"  # deflate method and valid check bits
    return "none"  # an empty file, or damage that the first record's checksum will name


class RecordReader:
    """The payloads of one TFRecord file, checksums verified, read one record at a time.

    Example:
        >>> with RecordReader(path) as reader:
        ...     for payload in reader:
        ...         ...
        ...     reader.compressed_bytes  # bytes of the file read so far
    """

    def __init__(self, path: str | Path, compression: str = "auto"):
        if compression not in COMPRESSIONS:
            raise InputError(
                f"compression {compression!r} is unknown; choose from {', '.join(COMPRESSIONS)}",
                field="compression",
            )
        self.path = Path(path)
        self._file = open(self.path, "rb")  # noqa: SIM115 - closed by close()/__exit__
        detected = detect_compression(self._file.peek(12)[:12])
        self.given = compression != "auto"  # chosen with --compression, not detected
        self.detected = detected
        if compression == "auto":
            compression = detected
        self.compression = compression
        self._inflate: _Inflate | None = None
        if compression == "none":
            self._stream = self._file
        else:
            self._inflate = _Inflate(self._file, 15 + (16 if compression == "gzip" else 0))
            self._stream = io.BufferedReader(self._inflate, buffer_size=_CHUNK)
        self.records = 0

    @property
    def compressed_bytes(self) -> int:
        """Bytes of the file read so far."""
        return self._inflate.compressed_read if self._inflate else self._file.tell()

    def _fail(self, what: str) -> InputError:
        if self.records == 0 and self.given and self.detected != self.compression:
            # a first record that fails to read under a compression the file does not have
            def kind(c: str) -> str:
                return "uncompressed" if c == "none" else f"{c}-compressed"

            return InputError(
                f"{self.path}: read as {kind(self.compression)}, record 1 {what}, and the "
                f"file looks {kind(self.detected)}; leave out {opt('compression')} (auto) or "
                f"give {opt('compression')} {self.detected}",
                field="compression",
            )
        return InputError(
            f"{self.path}: record {self.records + 1} {what}; the file is damaged, download it again"
        )

    def _read(self, n: int, what: str) -> bytes:
        try:
            data = self._stream.read(n)
        except (EOFError, zlib.error) as err:
            raise self._fail(f"cannot be decompressed ({self.compression}: {err})") from None
        if len(data) != n:
            raise self._fail(f"is cut short in its {what}")
        return data

    def __iter__(self) -> Iterator[bytes]:
        while True:
            try:
                header = self._stream.read(12)
            except (EOFError, zlib.error) as err:
                raise self._fail(f"cannot be decompressed ({self.compression}: {err})") from None
            if not header:
                return
            if len(header) != 12:
                raise self._fail("is cut short in its header")
            length, length_crc = struct.unpack("<QI", header)
            if masked_crc(header[:8]) != length_crc:
                raise self._fail("has a wrong length checksum")
            payload = self._read(length, "payload")
            (payload_crc,) = struct.unpack("<I", self._read(4, "checksum"))
            if masked_crc(payload) != payload_crc:
                raise self._fail("has a wrong payload checksum")
            self.records += 1
            yield payload

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> RecordReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------- tf.train.Example


@cache
def _example_class():
    """The ``tf.train.Example`` message class, built from a schema declared here in a
    private descriptor pool (so it never clashes with TensorFlow's if both are loaded)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    schema = descriptor_pb2.FileDescriptorProto(
        name="gitool/tf_example.proto", package="tensorflow", syntax="proto3"
    )

    def message(name: str, *fields: tuple[str, int, int, int, str]):
        msg = schema.message_type.add(name=name)
        for field_name, number, kind, label, type_name in fields:
            field = msg.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = type_name
        return msg

    repeated, optional = F.LABEL_REPEATED, F.LABEL_OPTIONAL
    message("BytesList", ("value", 1, F.TYPE_BYTES, repeated, ""))
    message("FloatList", ("value", 1, F.TYPE_FLOAT, repeated, ""))
    message("Int64List", ("value", 1, F.TYPE_INT64, repeated, ""))
    feature = message(
        "Feature",
        ("bytes_list", 1, F.TYPE_MESSAGE, optional, ".tensorflow.BytesList"),
        ("float_list", 2, F.TYPE_MESSAGE, optional, ".tensorflow.FloatList"),
        ("int64_list", 3, F.TYPE_MESSAGE, optional, ".tensorflow.Int64List"),
    )
    feature.oneof_decl.add(name="kind")
    for field in feature.field:
        field.oneof_index = 0
    features = message(
        "Features", ("feature", 1, F.TYPE_MESSAGE, repeated, ".tensorflow.Features.FeatureEntry")
    )
    entry = features.nested_type.add(name="FeatureEntry")
    entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=optional)
    entry.field.add(
        name="value", number=2, type=F.TYPE_MESSAGE, label=optional,
        type_name=".tensorflow.Feature",
    )  # fmt: skip
    entry.options.map_entry = True
    message("Example", ("features", 1, F.TYPE_MESSAGE, optional, ".tensorflow.Features"))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(schema)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.Example"))


def parse_example(payload: bytes) -> dict[str, bytes | list]:
    """A ``tf.train.Example`` payload as ``{feature name: value}``: a bytes feature holding
    one value gives those bytes, any other feature the list of its values.

    Raises:
        ValueError: the payload is not a ``tf.train.Example``.
    """
    from google.protobuf.message import DecodeError

    example = _example_class()()
    try:
        example.ParseFromString(payload)
    except DecodeError as err:
        raise ValueError(f"not a tf.train.Example ({err})") from None
    out: dict[str, bytes | list] = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        values = list(getattr(feature, kind).value) if kind else []
        out[name] = values[0] if kind == "bytes_list" and len(values) == 1 else values
    return out
