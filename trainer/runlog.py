"""The run folder's text files: JSON-lines logs that a crash cannot make unreadable, and an atomic
``config.json``.

A line is appended with one ``write`` of the whole line; if that write fails or comes up short
(disk full, ``ulimit -f``) the file is cut back to its old length, so no half line stays behind.
A torn line left by an older version or another writer is dropped on reading, with one warning line
naming the file, instead of making the run unresumable or unplottable.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def append_line(path: Path, record: dict) -> None:
    """Append ``record`` as one JSON line, all of it or nothing (OSError names ``path``)."""
    data = memoryview((json.dumps(record) + "\n").encode())
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        start = os.fstat(fd).st_size
        try:
            while data:  # after a short write, the next one raises the cause (ENOSPC, EFBIG)
                data = data[os.write(fd, data):]
        except OSError as exc:
            os.ftruncate(fd, start)
            raise OSError(exc.errno, f"{exc.strerror} (the line was not written)", str(path)) from None
    finally:
        os.close(fd)


def read_lines(path: Path) -> tuple[list[dict], list[int]]:
    """The records of a JSON-lines file and the numbers of the lines dropped as torn (not JSON)."""
    if not path.is_file():
        return [], []
    rows, torn = [], []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            torn.append(number)
    return rows, torn


def warn_torn(path: Path, torn: list[int], action: str) -> None:
    """One warning line: which file, which lines, and what was done about them."""
    if torn:
        lines = ", ".join(map(str, torn[:5])) + (", ..." if len(torn) > 5 else "")
        print(f"warning: {path}: {len(torn)} torn line(s) (line {lines}: not JSON, e.g. cut by a full disk) "
              f"{action}", file=sys.stderr)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: the old file stays whole
    until the new one is."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def truncate_log(path: Path, last_step: int) -> None:
    """Keep the lines up to ``last_step`` (the later ones are written again after a resume); a torn
    line is dropped with a warning."""
    rows, torn = read_lines(path)
    if not path.is_file():
        return
    warn_torn(path, torn, "dropped on resume")
    write_atomic(path, "".join(json.dumps(r) + "\n" for r in rows if r["step"] <= last_step))
