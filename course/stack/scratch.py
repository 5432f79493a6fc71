"""Throwaway stacks for tests and benchmarks: free ports and a state folder of their own."""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def open_temp_folder(prefix: str) -> Path:
    """A new temporary folder that PostgreSQL's own system user can pass through.

    mkdtemp makes it 0700, and under root PostgreSQL runs as `course-postgres`, which must
    reach its data folder inside (pytest's tmp_path is under a 0700 folder for the same
    reason).
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path
