"""The interactive explorer: one self-contained HTML page (no network at view time) per `graphnn viz -o x.html`.

The page inlines its script and style (explorer.js, explorer.css in this package) and the data of every stage
(explorer_data.py) as JSON. It opens with modules collapsed, expands a module on click, searches, shows a node's
details in a side panel, overlays a profile's per-kernel time and draws the memory plan as a timeline; scripts
drive it through `window.graphnn` (stages, setStage, expand, collapse, visibleNodes, search, select).
"""

from __future__ import annotations

import html
import json
from importlib import resources

from graphnn.viz.explorer_data import explorer_data

_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>{css}</style></head>
<body>
<header><h1 id="title"></h1><span id="stages"></span>
<input id="search" type="search" placeholder="search: op, module, parameter, shape">
<label>overlay <select id="overlay"><option value="none">phase</option><option id="time" value="time">time (profile)</option>
<option value="flops">FLOPs</option></select></label>
<button id="fit">fit</button><button id="collapse-all">collapse all</button><button id="expand-all">expand all</button>
</header>
<main><svg id="canvas" xmlns="http://www.w3.org/2000/svg"><g id="viewport"></g></svg><aside id="panel"></aside></main>
<div id="memory"><div id="memlabel"></div><svg id="memchart"></svg></div>
<script type="application/json" id="graphnn-data">{data}</script>
<script>{js}</script>
</body></html>
"""


def _asset(name: str) -> str:
    return resources.files("graphnn.viz").joinpath(name).read_text(encoding="utf-8")


def _json_in_html(obj) -> str:
    """JSON that a <script> element holds verbatim: '<' escaped so that no '</script>' ends it early."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).replace("<", "\\u003c")


def to_explorer(
    stages: dict,
    title: str = "graphnn",
    summary: str | None = None,
    cycles: dict | None = None,
    depth: int | None = None,
) -> str:
    """The explorer page of `stages` (name -> Stage); `cycles`: {stage: {kernel index: cycles}} from a profile;
    `depth`: open modules down to this many levels below the model (default: as many as keep the drawing small)."""
    data = explorer_data(stages, title, cycles, summary)
    data["depth"] = depth
    return _PAGE.format(
        title=html.escape(title), css=_asset("explorer.css"), js=_asset("explorer.js"), data=_json_in_html(data)
    )
