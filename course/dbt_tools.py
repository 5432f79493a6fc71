"""Run the course's dbt project and look at it: for notebooks, tests and the Airflow DAGs.

The project lives in `dbt/clickhouse_analytics` and its profile in `dbt/profiles.yml`, which
reads the connection from the same CLICKHOUSE_* settings as every other client. dbt's outputs
(target/, logs/) go to the state folder (`<COURSE_HOME>/dbt/`), never into the repository.

From a notebook::

    from course.dbt_tools import run_dbt, parse_manifest, draw_lineage
    print(run_dbt(["build"]).stdout)
    draw_lineage(parse_manifest())
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .settings import PROJECT_ROOT, Settings, load_settings

DBT_ROOT = PROJECT_ROOT / "dbt"
PROJECT_DIR = DBT_ROOT / "clickhouse_analytics"
PROFILES_DIR = DBT_ROOT
PROJECT_NAME = "clickhouse_analytics"
# The columns of the lineage picture, left to right.
LAYERS = ("sources", "staging", "intermediate", "marts")
LAYER_COLORS = {
    "sources": "#dcfce7",
    "staging": "#dbeafe",
    "intermediate": "#fef3c7",
    "marts": "#fce7f3",
}
DEFAULT_TIMEOUT_S = 1800


class DbtError(RuntimeError):
    """A dbt command failed; the message holds the command and the end of its output."""

    def __init__(self, message: str, proc: subprocess.CompletedProcess[str]) -> None:
        super().__init__(message)
        self.proc = proc


def dbt_executable() -> str:
    """The `dbt` next to this Python (the course venv), else the first one on PATH."""
    beside = Path(sys.executable).parent / "dbt"
    if beside.exists():
        return str(beside)
    found = shutil.which("dbt")
    if found is None:
        raise FileNotFoundError("dbt is not installed in this environment; run `make setup`")
    return found


def state_dir(settings: Settings) -> Path:
    """dbt's folder in the state folder: `<COURSE_HOME>/dbt`."""
    return settings.home / "dbt"


def default_target_path(settings: Settings) -> Path:
    """Where dbt writes manifest.json, run_results.json and compiled SQL by default."""
    return state_dir(settings) / "target"


def default_log_path(settings: Settings) -> Path:
    """Where dbt writes dbt.log by default."""
    return state_dir(settings) / "logs"


def dbt_env(
    settings: Settings | None = None,
    schema: str | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Environment for a dbt process: `base` (default: this process's) plus the settings.

    `schema` sets DBT_SCHEMA: models then go to `<schema>_staging`, `<schema>_intermediate`
    and `<schema>_marts` instead of `staging`, `intermediate` and `marts` (a private build,
    as the tests make). Telemetry and colours are off: the output is read in notebooks and logs.
    """
    settings = settings or load_settings()
    env = dict(os.environ if base is None else base)
    env.update(settings.client_env())
    env.update(
        {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1", "DBT_USE_COLORS": "false"}
    )
    if schema is not None:
        env["DBT_SCHEMA"] = schema
    return env


def dbt_command(
    args: Sequence[str],
    target_path: Path,
    log_path: Path,
    project_dir: Path = PROJECT_DIR,
    profiles_dir: Path = PROFILES_DIR,
) -> list[str]:
    """The full dbt command line for `args` (like ["build", "--select", "marts"])."""
    return [
        dbt_executable(),
        *args,
        "--project-dir",
        str(project_dir),
        "--profiles-dir",
        str(profiles_dir),
        "--target-path",
        str(target_path),
        "--log-path",
        str(log_path),
    ]


def run_dbt(
    args: Sequence[str],
    settings: Settings | None = None,
    *,
    target_path: Path | str | None = None,
    log_path: Path | str | None = None,
    schema: str | None = None,
    project_dir: Path | str = PROJECT_DIR,
    check: bool = False,
    capture_output: bool = True,
    timeout: float | None = DEFAULT_TIMEOUT_S,
    extra_env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `dbt <args>` on the course project and return the finished process.

    `--project-dir` and `--profiles-dir` point at the project; `--target-path` and
    `--log-path` default to `<COURSE_HOME>/dbt/target` and `<COURSE_HOME>/dbt/logs`.
    `schema` makes a private build (see `dbt_env`). With `check=True` a non-zero exit raises
    DbtError with the end of dbt's output; otherwise look at `returncode` yourself.
    """
    settings = settings or load_settings()
    target = Path(target_path) if target_path is not None else default_target_path(settings)
    logs = Path(log_path) if log_path is not None else default_log_path(settings)
    target.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    env = dbt_env(settings, schema=schema)
    if extra_env:
        env.update(extra_env)
    cmd = dbt_command(list(args), target, logs, project_dir=Path(project_dir))
    proc = subprocess.run(
        cmd,
        cwd=str(project_dir),
        env=env,
        capture_output=capture_output,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        output = (proc.stdout or "")[-6000:] + (proc.stderr or "")[-2000:]
        raise DbtError(f"dbt {' '.join(args)} exited {proc.returncode}:\n{output}", proc)
    return proc


def parse_manifest(
    settings: Settings | None = None,
    *,
    target_path: Path | str | None = None,
    project_dir: Path | str = PROJECT_DIR,
) -> Path:
    """Run `dbt parse` and return the path of the manifest.json it wrote.

    Parsing needs no database. Airflow's Cosmos reads this file (LoadMode.DBT_MANIFEST) to
    build one task per model without running dbt at DAG-parse time.
    """
    settings = settings or load_settings()
    target = Path(target_path) if target_path is not None else default_target_path(settings)
    run_dbt(["parse"], settings, target_path=target, project_dir=project_dir, check=True)
    manifest = target / "manifest.json"
    if not manifest.exists():
        raise FileNotFoundError(f"dbt parse succeeded but wrote no {manifest}")
    return manifest


def load_manifest(manifest: Path | str | Mapping[str, Any]) -> Mapping[str, Any]:
    """A manifest as a dict, from its path or as is."""
    if isinstance(manifest, Mapping):
        return manifest
    return json.loads(Path(manifest).read_text(encoding="utf-8"))


@dataclass
class Lineage:
    """The project's graph: nodes (unique_id -> label and layer) and edges parent -> child."""

    labels: dict[str, str] = field(default_factory=dict)
    layers: dict[str, str] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)

    def in_layer(self, layer: str) -> list[str]:
        """unique_ids of the nodes in `layer`, sorted by label."""
        return sorted(
            (uid for uid, lay in self.layers.items() if lay == layer),
            key=lambda uid: self.labels[uid],
        )

    def parents(self, uid: str) -> list[str]:
        """Direct parents of a node."""
        return [parent for parent, child in self.edges if child == uid]


def _model_layer(node: Mapping[str, Any]) -> str:
    """A model's layer: its folder under models/ (fqn[1]), else its name's prefix."""
    fqn = node.get("fqn", [])
    if len(fqn) > 2 and fqn[1] in LAYERS:
        return fqn[1]
    name = node["name"]
    if name.startswith("stg_"):
        return "staging"
    if name.startswith("int_"):
        return "intermediate"
    return "marts"


def lineage(manifest: Path | str | Mapping[str, Any], package: str = PROJECT_NAME) -> Lineage:
    """Sources, seeds, snapshots and models of `package` with the edges between them.

    Tests and unit tests are left out: they hang off models and are not part of the flow.
    """
    data = load_manifest(manifest)
    graph = Lineage()
    for uid, source in data.get("sources", {}).items():
        if source.get("package_name") == package:
            graph.labels[uid] = f"{source['source_name']}.{source['name']}"
            graph.layers[uid] = "sources"
    for uid, node in data.get("nodes", {}).items():
        if node.get("package_name") != package:
            continue
        kind = node.get("resource_type")
        if kind == "model":
            graph.layers[uid] = _model_layer(node)
        elif kind == "seed":
            graph.layers[uid] = "sources"
        elif kind == "snapshot":
            graph.layers[uid] = "staging"
        else:
            continue
        graph.labels[uid] = node["name"]
    for uid in graph.labels:
        node = data.get("nodes", {}).get(uid)
        if node is None:
            continue
        for parent in node.get("depends_on", {}).get("nodes", []):
            if parent in graph.labels:
                graph.edges.append((parent, uid))
    return graph


def _depth_in_layer(graph: Lineage, uid: str, seen: frozenset[str] = frozenset()) -> int:
    """How many nodes of its own layer a node builds on, at most (0: only earlier layers)."""
    same = [p for p in graph.parents(uid) if graph.layers[p] == graph.layers[uid] and p not in seen]
    return max((_depth_in_layer(graph, p, seen | {uid}) + 1 for p in same), default=0)


def _columns(graph: Lineage) -> list[tuple[str, list[str]]]:
    """(layer, nodes) per column, left to right.

    A layer gets one column per step of dependencies inside it (int_orders_with_revenue,
    which reads int_order_items_enriched, stands right of it), so every arrow points right.
    Within a column, nodes are sorted by the mean row of their parents to keep arrows short.
    """
    columns: list[tuple[str, list[str]]] = []
    row: dict[str, float] = {}
    for layer in LAYERS:
        nodes = graph.in_layer(layer)
        depth = {uid: _depth_in_layer(graph, uid) for uid in nodes}
        for level in range(max(depth.values(), default=-1) + 1):
            column = [uid for uid in nodes if depth[uid] == level]

            def key(uid: str) -> tuple[float, str]:
                placed = [row[p] for p in graph.parents(uid) if p in row]
                return (sum(placed) / len(placed) if placed else -1.0, graph.labels[uid])

            column.sort(key=key)
            for index, uid in enumerate(column):
                row[uid] = index - (len(column) - 1) / 2
            columns.append((layer, column))
    return columns


def draw_lineage(
    manifest_path: Path | str | Mapping[str, Any], ax: Any = None, package: str = PROJECT_NAME
) -> Any:
    """Draw the lineage (sources -> staging -> intermediate -> marts) in columns by layer.

    Plain matplotlib (no graphviz): one box per node, one arrow per dependency. Draws on `ax`
    when given, else on a new figure sized to the graph; returns the figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    graph = lineage(manifest_path, package)
    columns = _columns(graph)
    tallest = max((len(nodes) for _, nodes in columns), default=1)
    col_gap, box_w, box_h, row_gap = 3.5, 3.0, 0.5, 0.75
    half = (tallest - 1) * row_gap / 2
    if ax is None:
        fig, ax = plt.subplots(
            figsize=(col_gap * len(columns) + 0.4, max(3.0, row_gap * tallest + 1.6))
        )
    else:
        fig = ax.figure

    position: dict[str, tuple[float, float]] = {}
    layer_x: dict[str, list[float]] = {}
    for col, (layer, nodes) in enumerate(columns):
        x = col * col_gap
        layer_x.setdefault(layer, []).append(x)
        # Each column centred on y = 0, its first node at the top.
        for index, uid in enumerate(nodes):
            position[uid] = (x, ((len(nodes) - 1) / 2 - index) * row_gap)
    for layer, xs in layer_x.items():
        ax.text(
            sum(xs) / len(xs),
            half + 0.6,
            layer,
            ha="center",
            va="bottom",
            fontsize=11,
            fontweight="bold",
        )

    for parent, child in graph.edges:
        (x0, y0), (x1, y1) = position[parent], position[child]
        ax.annotate(
            "",
            xy=(x1 - box_w / 2, y1),
            xytext=(x0 + box_w / 2, y0),
            arrowprops={
                "arrowstyle": "-|>",
                "color": "#6b7280",
                "lw": 0.8,
                "shrinkA": 0,
                "shrinkB": 0,
                "connectionstyle": "arc3,rad=0.0",
            },
        )
    for uid, (x, y) in position.items():
        layer = graph.layers[uid]
        ax.add_patch(
            FancyBboxPatch(
                (x - box_w / 2, y - box_h / 2),
                box_w,
                box_h,
                boxstyle="round,pad=0.02,rounding_size=0.1",
                facecolor=LAYER_COLORS[layer],
                edgecolor="#374151",
                linewidth=0.8,
                zorder=2,
            )
        )
        ax.text(x, y, graph.labels[uid], ha="center", va="center", fontsize=8, zorder=3)

    ax.set_xlim(-box_w / 2 - 0.2, (len(columns) - 1) * col_gap + box_w / 2 + 0.2)
    ax.set_ylim(-half - box_h, half + 1.2)
    ax.set_axis_off()
    ax.set_title(f"dbt lineage of {package}", fontsize=12)
    return fig
