"""The data directory (KEFU_VAR_DIR) checked before `kefu run` starts anything."""

from __future__ import annotations

import os
from pathlib import Path

from kefu.errors import KefuError

# var/ subdirectories written at start (logs, secrets + endpoints, graph data); pgdata lives in var/ itself
VAR_SUBDIRS, PROBE_BYTES = ("log", "run", "falkordb"), 64 * 1024


def check_var_dir(var_dir: Path) -> None:
    """Fail before any server starts when var/ cannot be written (read-only, not a directory, full):
    one clear error naming the path instead of a traceback, or a child dying later on a full disk."""
    for path in (var_dir, *(var_dir / name for name in VAR_SUBDIRS)):
        probe = path / f".kefu-write-check-{os.getpid()}"
        try:
            path.mkdir(parents=True, exist_ok=True)
            with open(probe, "wb") as out:
                out.write(b"\0" * PROBE_BYTES)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise KefuError(
                f"cannot write to the data directory {path}: {reason}; set KEFU_VAR_DIR to a writable "
                "directory with free space"
            ) from exc
        finally:
            try:
                probe.unlink(missing_ok=True)
            except OSError:
                pass
