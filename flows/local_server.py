"""The temporary Prefect server a ``pet`` command starts when no server is configured.

Prefect starts one by itself, but as a plain child process: a terminal Ctrl-C (sent to the whole
foreground process group) kills it under the running flow, and a ``pet`` killed outright leaves
it listening forever. Ours is Prefect's own ``SubprocessASGIServer`` launched in a session of its
own (Ctrl-C reaches ``pet`` only, which then stops the server itself) and, on Linux, with a
parent-death signal, so it dies with ``pet`` however ``pet`` ends.
"""
from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
from unittest import mock

from prefect.logging.handlers import APILogWorker
from prefect.server.api import server as prefect_server
from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int):
    def preexec() -> None:
        if sys.platform.startswith("linux"):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


class _DetachedPopen(subprocess.Popen):
    def __init__(self, *args, **kwargs):
        kwargs.update(start_new_session=True, preexec_fn=_die_with_parent(os.getpid()))
        super().__init__(*args, **kwargs)


class TemporaryServer(prefect_server.SubprocessASGIServer):
    def _run_uvicorn_command(self) -> subprocess.Popen:
        with mock.patch.object(prefect_server.subprocess, "Popen", _DetachedPopen):
            return super()._run_uvicorn_command()


def server_configured() -> bool:
    return bool(get_current_settings().api.url)


@contextlib.contextmanager
def prefect_api(log: logging.Logger | None = None):
    """Run the body against the configured Prefect API, else against a temporary server."""
    if server_configured():
        yield None
        return
    server = TemporaryServer()
    with _announcements_quiet():
        server.start()
    if log:
        log.debug("temporary Prefect server on %s", server.address)
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield server
    finally:
        # the flow's last log lines are still queued for the API: send them before it goes away
        with contextlib.suppress(Exception):
            APILogWorker.drain_all(timeout=5)
        with _announcements_quiet():
            server.stop()


@contextlib.contextmanager
def _announcements_quiet():
    # Prefect announces its temporary server (with a link to its docs) at every start and stop
    prefect_logger = logging.getLogger("prefect")
    level = prefect_logger.level
    prefect_logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        prefect_logger.setLevel(level)
