"""pytest fixtures: one sealcast server per session (see oracle.py for the helpers)."""

from __future__ import annotations

import pytest

from oracle import Server, start_server, stop_server


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Server:
    log_path = tmp_path_factory.mktemp("server") / "sealcast.stderr.log"
    s = start_server(log_path)
    yield s
    code = stop_server(s)
    if code is None:
        print(f"\nsealcast did not exit within 10 s of SIGTERM and was killed (log: {log_path})")


@pytest.fixture(autouse=True)
def _server_still_alive(request):
    """After each test that used the server, make sure it did not die under us."""
    yield
    if "server" in request.fixturenames:
        s: Server = request.getfixturevalue("server")
        if not s.alive():
            pytest.fail(f"sealcast exited (code {s.proc.returncode}) during this test; stderr tail:\n{s.log_tail()}")
