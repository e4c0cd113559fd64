"""Damaged TFRecord files: what TensorFlow's `DataLossError` means for one file, in one line.

TensorFlow's record reader frames every record as length, length CRC, data, data CRC
(https://www.tensorflow.org/tutorials/load_data/tfrecord#tfrecords_format_details). A file cut short (an
interrupted copy, download or conversion, a full disk) ends inside a record: "truncated record at OFFSET". A
flipped byte fails a checksum: "corrupted record at OFFSET". Neither message names the file, and a dataset
read from many files at once cannot say which one broke. This module reads files one at a time, so every
message names the file, the record and the byte offset where reading stopped, and what to do about it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bdv2.paths import as_path

from .errors import DataToolsError

if TYPE_CHECKING:
    import tensorflow as tf

_WHERE = re.compile(r"(truncated|corrupted) record at (\d+)")

FIX = ("delete it and re-run the command that wrote it (bdv2's converters redo only missing outputs), "
       "or copy it again from where it came from")


@dataclass(frozen=True)
class Damage:
    """Where reading one TFRecord file stopped."""

    path: str
    good_records: int
    """Records read intact before the damaged one."""
    offset: int | None
    """Byte offset of the damaged record, as TensorFlow reports it."""
    truncated: bool
    """The file ends inside a record (cut short), rather than failing a checksum (corrupt)."""
    size: int | None

    def describe(self, fix: str = FIX) -> str:
        record = self.good_records + 1
        at = f" (near byte {self.offset:,}" if self.offset is not None else " ("
        at += f" of {self.size:,})" if self.size is not None else ")"
        at = "" if at == " ()" else at
        intact = {0: "no record before it is intact", 1: "the record before it is intact"}.get(
            self.good_records, f"the {self.good_records} records before it are intact")
        if self.truncated:
            what = (f"truncated TFRecord: the file ends inside record {record}{at}, as after an interrupted copy, "
                    f"download or conversion, or a full disk")
        else:
            what = f"corrupt TFRecord: record {record}{at} fails its checksum"
        return f"{self.path}: {what}; {intact}. Fix: {fix}"


class CorruptRecordError(DataToolsError):
    """A TFRecord file that cannot be read to its end; the message is one line naming the file, where reading
    stopped and the fix."""

    def __init__(self, damage: Damage) -> None:
        super().__init__(damage.describe())
        self.damage = damage
        self.fix = FIX


def damage_from(path: str | Path, good_records: int, error: BaseException) -> Damage:
    """The Damage of ``path`` from TensorFlow's DataLossError raised after ``good_records`` records."""
    message = str(getattr(error, "message", error))
    m = _WHERE.search(message)
    try:
        size: int | None = as_path(path).stat().st_size  # a local file or a URL
    except OSError:
        size = None
    if m is None:
        return Damage(str(path), good_records, None, "truncated" in message or "Read less" in message, size)
    return Damage(str(path), good_records, int(m.group(2)), m.group(1) == "truncated", size)


def read_records(path: str | Path) -> Iterator[tf.Tensor]:
    """The serialized records of one TFRecord file, in order.

    Raises:
        CorruptRecordError: the file is truncated or corrupt; raised where reading stopped.
    """
    import tensorflow as tf

    n = 0
    try:
        for record in tf.data.TFRecordDataset(str(path)):
            yield record
            n += 1
    except tf.errors.DataLossError as e:
        raise CorruptRecordError(damage_from(path, n, e)) from None


def scan(path: str | Path) -> Damage | None:
    """Read every record of one file (framing and checksums, no parsing); its Damage, or None if it is whole."""
    try:
        for _ in read_records(path):
            pass
    except CorruptRecordError as e:
        return e.damage
    return None


@dataclass(frozen=True)
class ScanResult:
    damaged: list[Damage]
    scanned: int
    unscanned: int
    """Files left unread when the time budget ran out."""


def find_damaged(files: Iterable[str | Path], budget_s: float | None = None) -> ScanResult:
    """Scan files one by one for damage; with ``budget_s``, stop starting new files after that many seconds."""
    files = list(files)
    start = time.monotonic()
    damaged: list[Damage] = []
    for i, f in enumerate(files):
        if budget_s is not None and i and time.monotonic() - start > budget_s:
            return ScanResult(damaged, i, len(files) - i)
        d = scan(f)
        if d is not None:
            damaged.append(d)
    return ScanResult(damaged, len(files), 0)


def is_data_loss(error: BaseException) -> bool:
    """TensorFlow's DataLossError, recognised without importing TensorFlow."""
    return any(c.__name__ == "DataLossError" and c.__module__.startswith("tensorflow") for c in type(error).__mro__)


def explain_data_loss(files: Iterable[str | Path], error: BaseException, budget_s: float = 120.0,
                      check_hint: str = "") -> str:
    """One message for a DataLossError raised by a pipeline over many ``files``: the damaged files found by
    scanning them (within ``budget_s``), each described, else TensorFlow's words and how to look for it."""
    result = find_damaged(files, budget_s)
    if result.damaged:
        text = "; ".join(d.describe() for d in result.damaged[:3])
        more = len(result.damaged) - 3
        if more > 0:
            text += f"; and {more} more damaged file{'s' if more != 1 else ''}"
    else:
        m = _WHERE.search(str(getattr(error, "message", error)))
        where = f"{m.group(1)} record at byte {m.group(2)}" if m else str(error).splitlines()[0]
        text = f"damaged TFRecord data ({where}) in a file that was not scanned. Fix: {FIX}"
    if result.unscanned:
        text += (f" ({result.unscanned} of {result.scanned + result.unscanned} files not scanned within "
                 f"{budget_s:.0f} s{'; ' + check_hint if check_hint else ''})")
    return text
