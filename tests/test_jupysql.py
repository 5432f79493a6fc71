"""JupySQL in a real Jupyter kernel, talking to the embedded server like a course notebook does.

The kernel is a separate process started with the CLICKHOUSE_* settings in its environment;
the tests send it cells and read the values back from its replies and outputs.
"""

from __future__ import annotations

import ast
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

KERNEL_START_TIMEOUT_S = 60
CELL_TIMEOUT_S = 60

pytestmark = pytest.mark.slow


@dataclass
class CellOutput:
    """What one executed cell produced."""

    stdout: str = ""
    result: str | None = None  # text/plain of the execute_result, if the cell had a value
    errors: list[str] = field(default_factory=list)


def run_cell(kc: BlockingKernelClient, code: str) -> CellOutput:
    """Execute `code` in the kernel; fail the test unless the execute_reply status is ok."""
    out = CellOutput()

    def on_iopub(msg: dict[str, Any]) -> None:
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream" and content["name"] == "stdout":
            out.stdout += content["text"]
        elif kind == "execute_result":
            out.result = content["data"].get("text/plain")
        elif kind == "error":
            out.errors.append("\n".join(content["traceback"]))

    # Raises TimeoutError, so a stuck kernel or server cannot hang the suite.
    reply = kc.execute_interactive(code, timeout=CELL_TIMEOUT_S, output_hook=on_iopub)
    content = reply["content"]
    assert content["status"] == "ok", (
        f"cell failed:\n{code}\n{content.get('ename')}: {content.get('evalue')}\n"
        + "\n".join(out.errors)
    )
    return out


def literal_result(kc: BlockingKernelClient, expression: str) -> Any:
    """Evaluate `expression` as the value of a cell and parse its text/plain repr."""
    out = run_cell(kc, expression)
    assert out.result is not None, f"{expression!r} returned no execute_result"
    return ast.literal_eval(out.result)


@pytest.fixture(scope="module")
def kernel(clickhouse_settings: Any) -> Iterator[BlockingKernelClient]:
    """A python3 kernel whose environment carries the stack's settings."""
    env = {
        **os.environ,
        **clickhouse_settings.client_env(),
        # jupysql reports usage and checks for new versions unless told not to.
        "PLOOMBER_STATS_ENABLED": "false",
        "PLOOMBER_VERSION_CHECK_DISABLED": "true",
    }
    km = KernelManager(kernel_name="python3")
    km.start_kernel(env=env)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=KERNEL_START_TIMEOUT_S)
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
def sql_kernel(kernel: BlockingKernelClient, clickhouse_settings: Any) -> BlockingKernelClient:
    """The kernel with jupysql loaded and connected to the server."""
    s = clickhouse_settings
    # Quoting also keeps IPython from expanding `$name` or `{name}` inside the magic line.
    url = (
        f"clickhousedb://{quote(s.clickhouse_user, safe='')}:"
        f"{quote(s.clickhouse_password, safe='')}@{s.clickhouse_host}:{s.clickhouse_port}/default"
    )
    run_cell(kernel, "%load_ext sql")
    run_cell(kernel, "%config SqlMagic.displaylimit = 0")
    run_cell(kernel, f"%sql {url}")
    return kernel


def test_kernel_sees_settings(kernel: BlockingKernelClient, clickhouse_settings: Any) -> None:
    """The kernel process got the CLICKHOUSE_* settings in its environment."""
    seen = literal_result(
        kernel, "import os; (os.environ['CLICKHOUSE_HOST'], os.environ['CLICKHOUSE_PORT'])"
    )
    assert seen == (clickhouse_settings.clickhouse_host, str(clickhouse_settings.clickhouse_port))


def test_sql_line_magic_returns_rows(sql_kernel: BlockingKernelClient) -> None:
    """`res = %sql SELECT ...` gives the rows, as a ResultSet and as a DataFrame."""
    run_cell(
        sql_kernel,
        "res = %sql SELECT toUInt8(number) AS n, concat('row-', toString(number)) AS label "
        "FROM numbers(3) ORDER BY n",
    )
    assert literal_result(sql_kernel, "list(res.keys)") == ["n", "label"]
    assert literal_result(sql_kernel, "[tuple(row) for row in res]") == [
        (0, "row-0"),
        (1, "row-1"),
        (2, "row-2"),
    ]
    out = run_cell(sql_kernel, "print(repr(res.DataFrame().to_dict(orient='list')))")
    assert ast.literal_eval(out.stdout.strip()) == {
        "n": [0, 1, 2],
        "label": ["row-0", "row-1", "row-2"],
    }


def test_sql_cell_magic_creates_inserts_and_reads(
    sql_kernel: BlockingKernelClient, ch_client: Any
) -> None:
    """A `%%sql` cell creates a table and inserts rows; a query reads them back."""
    database = f"jupysql_{uuid.uuid4().hex[:8]}"
    ch_client.command(f"CREATE DATABASE `{database}`")
    try:
        run_cell(
            sql_kernel,
            "%%sql\n"
            f"CREATE TABLE {database}.fruit (id UInt32, name String) "
            "ENGINE = MergeTree ORDER BY id;\n"
            f"INSERT INTO {database}.fruit VALUES (1, 'apple'), (2, 'banana'), (3, 'cherry');\n",
        )
        # The rows really are on the server, not only in the kernel.
        assert ch_client.query(f"SELECT count() FROM {database}.fruit").result_rows[0][0] == 3

        run_cell(
            sql_kernel,
            f"fruit = %sql SELECT id, name FROM {database}.fruit WHERE id >= 2 ORDER BY id",
        )
        assert literal_result(sql_kernel, "fruit.dict()") == {
            "id": (2, 3),
            "name": ("banana", "cherry"),
        }

        # `%%sql name <<` keeps the result of a query cell in a variable.
        run_cell(
            sql_kernel,
            f"%%sql totals <<\nSELECT count() AS n, sum(id) AS total FROM {database}.fruit",
        )
        assert literal_result(sql_kernel, "totals.dict()") == {"n": (3,), "total": (6,)}
    finally:
        ch_client.command(f"DROP DATABASE IF EXISTS `{database}`")
