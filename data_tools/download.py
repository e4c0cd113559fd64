"""One file over HTTP(S), resumable: the bytes go to ``<file>.partial`` beside the final name, which appears only
once the transfer is complete (bdv2.fsutil.tmp_path). A transfer cut off (network, Ctrl-C, a killed job) leaves
the ``.partial`` file, and the next call asks only for the rest with an HTTP Range request
(https://developer.mozilla.org/en-US/docs/Web/HTTP/Range_requests). A server that ignores Range (200 instead of
206) is read from the start again. A full disk removes the ``.partial`` file (it would keep the disk full) and
says so. Stdlib only (urllib).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from bdv2 import __version__, storage
from bdv2.fsutil import tmp_path

from .errors import DataToolsError

CHUNK = 1 << 20
USER_AGENT = f"bdv2/{__version__} (bdv2 data fetch)"
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class FetchError(DataToolsError):
    """A download that could not be done; the message is one line naming the URL or the folder."""


class NetworkError(FetchError):
    """The server could not be reached, answered an error, or closed the connection early. Resumable."""


class NotFound(NetworkError):
    """HTTP 404: the URL names no file (a wrong --from, or a file the mirror lacks)."""


class DiskFull(FetchError):
    """The output's file system ran out of room; the unfinished file was removed."""


def _open(url: str, start: int, timeout_s: float) -> http.client.HTTPResponse:
    headers = {"User-Agent": USER_AGENT}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        response: http.client.HTTPResponse = urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=timeout_s)
        return response
    except urllib.error.HTTPError as e:
        if e.code == 404:
            raise NotFound(f"{url}: not found (HTTP 404); check --from, or whether the mirror holds this file") \
                from None
        if e.code == 416 and start:
            raise  # the caller decides: the .partial file is complete, or not from this file
        raise NetworkError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        why = e.reason if isinstance(e, urllib.error.URLError) else e
        raise NetworkError(f"{url}: cannot connect ({why})") from None


def remote_size(url: str, timeout_s: float = 60.0) -> int | None:
    """The size a server announces for ``url`` (HEAD's Content-Length), or None when it gives none."""
    request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            length = response.headers.get("Content-Length")
    except urllib.error.HTTPError as e:
        if e.code == 404:
            raise NotFound(f"{url}: not found (HTTP 404); check --from, or whether the mirror holds this file") \
                from None
        raise NetworkError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        raise NetworkError(f"{url}: cannot connect ({getattr(e, 'reason', e)})") from None
    return int(length) if length is not None else None


def _write_failed(error: OSError, tmp: Path, final: Path) -> FetchError:
    tmp.unlink(missing_ok=True)
    if storage.says_full(error) or storage.is_full(final.parent):
        return DiskFull(f"{storage.full_disk_problem(final.parent, '--out')} ({final.name} was not finished and "
                        "was removed; finished files are kept)")
    return FetchError(f"{final}: cannot write: {storage.reason(error)}")


def download(url: str, final: Path, *, on_bytes: Callable[[int], None] = lambda n: None,
             timeout_s: float = 60.0) -> int:
    """Fetch ``url`` into ``final`` (through ``final.partial``, continuing it if present); return its size.

    Raises:
        NotFound: HTTP 404.
        NetworkError: the server could not be reached or closed the connection early (``.partial`` kept).
        DiskFull: no room left (``.partial`` removed).
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(final)
    start = tmp.stat().st_size if tmp.exists() else 0
    try:
        response = _open(url, start, timeout_s)
    except urllib.error.HTTPError as e:  # 416: nothing to send after `start` bytes
        known = _CONTENT_RANGE.match(e.headers.get("Content-Range", "").replace("*/", "0-0/"))
        if known and known.group(3) == str(start):
            os.replace(tmp, final)
            return start
        tmp.unlink(missing_ok=True)  # longer than the file: not a prefix of it
        return download(url, final, on_bytes=on_bytes, timeout_s=timeout_s)
    with response:
        if response.status == 206:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if match is None or int(match.group(1)) != start:
                raise NetworkError(f"{url}: the server answered a Range request for byte {start} with "
                                   f"{response.headers.get('Content-Range')!r}")
            total = None if match.group(3) == "*" else int(match.group(3))
        else:  # 200: the whole file again (the server ignores Range, or there was nothing to resume)
            start = 0
            length = response.headers.get("Content-Length")
            total = int(length) if length is not None else None
        with open(tmp, "ab" if start else "wb") as f:
            while True:
                try:
                    chunk = response.read(CHUNK)
                except (OSError, http.client.HTTPException) as e:
                    raise NetworkError(f"{url}: connection lost after {storage.size(start)} "
                                       f"({type(e).__name__}: {e}); re-run to resume") from None
                if not chunk:
                    break
                try:
                    f.write(chunk)
                except OSError as e:
                    with contextlib.suppress(OSError):  # closing flushes the buffer into the same full disk
                        f.close()
                    raise _write_failed(e, tmp, final) from None
                start += len(chunk)
                on_bytes(len(chunk))
            try:
                f.flush()
                os.fsync(f.fileno())
            except OSError as e:
                raise _write_failed(e, tmp, final) from None
    if total is not None and start != total:
        raise NetworkError(f"{url}: connection closed after {start} of {total} bytes; re-run to resume")
    os.replace(tmp, final)
    return start
