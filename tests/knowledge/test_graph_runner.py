"""`kefu run`'s graph wiring (Stack.start_graph): a local FalkorDB child, the seed loaded once, stopped cleanly."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from kefu.config import load_settings
from knowledge.graph import open_graph
from ops.runner import Stack
from tests.servers import free_port


def test_local_falkordb_is_started_loaded_and_stopped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    settings = load_settings({"KEFU_VAR_DIR": str(tmp_path), "KEFU_GRAPH_PORT": str(port)}, env_file=tmp_path / "no")
    caplog.set_level(logging.INFO, logger="kefu.run")
    stack = Stack(settings, tmp_path / "model.tar.gz")
    try:
        url = stack.start_graph()
        assert url == f"falkordb://127.0.0.1:{port}/kefu"
        child = next(c for c in stack.children if c.name == "falkordb")
        with open_graph(url) as store:
            assert store.counts()["nodes"] >= 60
        assert (tmp_path / "falkordb").is_dir() and (tmp_path / "log" / "falkordb.log").is_file()
    finally:
        stack.stop()
    assert child.proc.poll() is not None  # stopped with the stack
    # second start on the same data directory: the snapshot written on SIGTERM has the same digest
    again = Stack(settings, tmp_path / "model.tar.gz")
    try:
        again.start_graph()
        assert "(unchanged)" in caplog.text
    finally:
        again.stop()


def test_configured_graph_url_starts_no_server(tmp_path: Path, falkordb_server, caplog) -> None:
    url = f"falkordb://127.0.0.1:{falkordb_server.port}/runner_{free_port()}"
    settings = load_settings({"KEFU_VAR_DIR": str(tmp_path), "KEFU_GRAPH_URL": url}, env_file=tmp_path / "no")
    stack = Stack(settings, tmp_path / "model.tar.gz")
    try:
        assert stack.start_graph() == url
        assert stack.children == []
    finally:
        stack.stop()


def test_unreachable_configured_graph_is_logged_not_fatal(tmp_path: Path, caplog) -> None:
    url = f"falkordb://127.0.0.1:{free_port()}/kefu"
    settings = load_settings({"KEFU_VAR_DIR": str(tmp_path), "KEFU_GRAPH_URL": url}, env_file=tmp_path / "no")
    caplog.set_level(logging.ERROR, logger="kefu.run")
    assert Stack(settings, tmp_path / "model.tar.gz").start_graph() == url
    assert "graph answers will degrade" in caplog.text


def test_graph_settings(tmp_path: Path) -> None:
    from kefu.errors import ConfigError
    from knowledge.graph import graph_url_for

    no_env = tmp_path / "no.env"
    assert graph_url_for(load_settings({}, env_file=no_env)) == "falkordb://127.0.0.1:6479/kefu"
    assert graph_url_for(load_settings({"KEFU_GRAPH_PORT": "7000"}, env_file=no_env)).endswith(":7000/kefu")
    neo = "neo4j+s://u:pw@db:7687/neo4j"
    settings = load_settings({"KEFU_GRAPH_URL": neo}, env_file=no_env)
    assert graph_url_for(settings) == neo and "pw" not in repr(settings)
    for bad in ({"KEFU_GRAPH_URL": "redis://x"}, {"KEFU_GRAPH_PORT": "0"}, {"KEFU_NEO4J_URL": "http://x"}):
        with pytest.raises(ConfigError):
            load_settings(bad, env_file=no_env)
