"""Write drawn stages to files by extension: .svg .png .dot (one file per stage), .txt and .html (one file).

Several stages into an image or DOT file `net.svg` give `net.traced.svg`, `net.optimized.svg`, ...;
`.txt` concatenates the IR text of every stage and `.html` is the interactive explorer (explorer.py), one
self-contained page with every stage that needs no renderer. `to_html` writes the static page instead: per stage
its picture, IR text and DOT source.
"""

from __future__ import annotations

import html
import os

from graphnn.viz import render
from graphnn.viz.outfile import write_atomic
from graphnn.viz.stages import Stage, plural
from graphnn.viz.draw import as_stage, phases, to_dot
from graphnn.viz.explorer import to_explorer

EXTENSIONS = (".svg", ".png", ".dot", ".html", ".txt")


def stage_text(st: Stage) -> str:
    """The stage's IR text; each op line tagged with its phase when not forward and its kernel(s) when fused."""
    g = st.graph
    lines = g.to_text().split("\n")
    ph = phases(g)
    kernels: dict = {}
    if st.plan is not None:
        for k, grp in enumerate(st.plan.groups):
            for n in grp.nodes:
                kernels.setdefault(n.id, []).append(f"k{k}")
    if len(lines) == len(g.nodes) + 3:
        for i, n in enumerate(g.nodes):
            tags = ([] if ph[n.id] == "forward" else [ph[n.id]]) + kernels.get(n.id, [])
            if tags:
                lines[i + 1] += "  [" + ", ".join(tags) + "]"
    out = [f"# {st.title or st.name}"] + lines
    if st.plan is not None:
        names = g._names()
        out.append(f"# {plural(len(st.plan.groups), 'kernel')} (fusion groups), in execution order:")
        for k, grp in enumerate(st.plan.groups):
            roots = ", ".join(f"%{names.get(r.id, '?')}" for r in grp.roots)
            out.append(f"#   k{k} [{grp.pattern}] -> {roots}: " + ", ".join(n.op for n in grp.nodes))
    return "\n".join(out) + "\n"


def all_text(stages: dict) -> str:
    return "\n".join(stage_text(st) for st in stages.values())


def _svg_body(st: Stage, depth) -> str:
    try:
        svg = render.render(to_dot(st, depth=depth), "svg").decode()
    except (render.RendererNotFound, render.RenderError) as e:
        return f'<p class="note">No picture: {html.escape(str(e))}</p>'
    return svg[svg.find("<svg") :]


def to_html(
    stages,
    plan=None,
    *,
    stage: str | None = None,
    depth: int | None = None,
    title: str = "graphnn",
    summary: str | None = None,
) -> str:
    """One self-contained HTML page: per stage, its picture (inline SVG), IR text and DOT source.
    `stages` is a dict of Stages, or anything `to_dot` draws (with `plan` and `stage` as there)."""
    if not isinstance(stages, dict):
        st = as_stage(stages, plan, stage)
        stages = {st.name: st}
    parts = [
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>',
        "<style>body{font-family:Helvetica,Arial,sans-serif;margin:2em;color:#222}"
        "section{margin-bottom:3em}.pic{overflow:auto;border:1px solid #ddd;padding:.5em}"
        "pre{background:#f6f6f6;padding:.8em;overflow:auto;font-size:12px}.note{color:#b5523b}"
        "nav a{margin-right:1em}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<nav>" + "".join(f'<a href="#{k}">{html.escape(k)}</a>' for k in stages) + "</nav>",
    ]
    if summary:
        parts.append(f"<section><h2>summary</h2><pre>{html.escape(summary)}</pre></section>")
    for key, st in stages.items():
        parts.append(f'<section id="{html.escape(key)}"><h2>{html.escape(st.title or key)}</h2>')
        parts.append(f'<div class="pic">{_svg_body(st, depth)}</div>')
        parts.append(f"<details><summary>IR text</summary><pre>{html.escape(stage_text(st))}</pre></details>")
        parts.append(f"<details><summary>DOT</summary><pre>{html.escape(to_dot(st, depth=depth))}</pre></details>")
        parts.append("</section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _per_stage(path: str, key: str, many: bool) -> str:
    if not many:
        return path
    stem, ext = os.path.splitext(path)
    return f"{stem}.{key}{ext}"


def _contents(stages: dict, path: str, ext: str, depth, summary, title, cycles) -> dict:
    """{file path: bytes} of every file to write, all rendered before any is written."""
    if ext in (".txt", ".html"):
        text = all_text(stages) if ext == ".txt" else to_explorer(stages, title, summary, cycles, depth)
        return {path: text.encode("utf-8")}
    out = {}
    for key, st in stages.items():
        dot = to_dot(st, depth=depth)
        out[_per_stage(path, key, len(stages) > 1)] = dot.encode() if ext == ".dot" else render.render(dot, ext[1:])
    return out


def write_stages(
    stages: dict,
    path: str,
    depth: int | None = None,
    summary: str | None = None,
    title: str = "graphnn",
    cycles: dict | None = None,
) -> list:
    """Write the stages to `path` by its extension, creating missing folders; returns the paths written. Each
    file is written whole or not at all (an OSError names the path that failed). `cycles`: a profile for the
    explorer ({stage: {kernel index: cycles}})."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in EXTENSIONS:
        raise ValueError(f"unknown output type {ext or '(none)'} for {path}: use one of {' '.join(EXTENSIONS)}")
    files = _contents(stages, path, ext, depth, summary, title, cycles)
    for target, data in files.items():
        write_atomic(target, data, make_dirs=True)
    return list(files)
