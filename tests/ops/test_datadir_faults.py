"""`kefu run` on a data directory it cannot write (not a directory, full): one clear error naming
the path and a non-zero exit before any server starts, not a traceback or a child dying later."""

from __future__ import annotations

import os
import resource
import subprocess
import sys

import pytest

from kefu.config import PROJECT_ROOT
from tests.servers import free_port, require_model

pytestmark = pytest.mark.servers


def kefu_run(var_dir: str, preexec=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "KEFU_POSTGRES_URL"}
    env.update(
        KEFU_VAR_DIR=var_dir, KEFU_RASA_PORT=str(free_port()), KEFU_ACTIONS_PORT=str(free_port()),
        KEFU_CONSOLE_PORT=str(free_port()), KEFU_GRAPH_PORT=str(free_port()), PYTHONUNBUFFERED="1",
    )
    return subprocess.run(
        [sys.executable, "-m", "ops", "run"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
        timeout=300, preexec_fn=preexec,
    )


def test_var_dir_under_a_file_is_a_clear_error(tmp_path):
    """A path whose parent is a regular file (ENOTDIR): what a read-only or missing mount looks like to root."""
    require_model()
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    done = kefu_run(str(blocker / "var"))
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "Traceback" not in output, output
    assert f"cannot write to the data directory {blocker / 'var'}" in output, output


def _tiny_file_limit() -> None:
    """Files larger than 1 KiB fail with EFBIG in this process and its children: a disk that is full."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))


def test_full_var_dir_is_a_clear_error_before_any_server_starts(tmp_path):
    require_model()
    var = tmp_path / "var"
    done = kefu_run(str(var), preexec=_tiny_file_limit)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "Traceback" not in output, output
    assert "cannot write to the data directory" in output and str(var) in output, output
    assert not (var / "pgdata").exists(), "PostgreSQL was started on a full disk"
    assert not list((var / "log").glob("*.log")), "a server was started on a full disk"
