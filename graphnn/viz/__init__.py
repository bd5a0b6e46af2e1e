"""graphnn.viz: draw IR graphs (DOT, SVG, PNG, HTML) and summarize models; the code is in graphnn/tools/.

import graphnn.viz as viz
viz.to_dot(graph)                    # an ir.Graph, optionally with a FusionPlan: to_dot(g, plan)
viz.to_svg(compiled, stage="fused")  # a graphnn.compile(...) callable after one call
viz.draw(Net(), (1, 1, 32, 32))      # trace a model; shows as SVG in Jupyter
print(viz.summary(Net(), (1, 1, 32, 32)))
viz.to_explorer(viz.trace_stages(Net(), [x], ["traced", "fused"]))  # the interactive page (HTML text)
"""

from graphnn.viz.render import RendererNotFound, available as renderer_available  # noqa: F401
from graphnn.viz.stages import Stage, trace_stages  # noqa: F401
from graphnn.viz.summary import summary  # noqa: F401
from graphnn.viz.draw import GraphView, draw, phases, to_dot, to_png, to_svg  # noqa: F401
from graphnn.viz.files import stage_text, to_html, write_stages  # noqa: F401
from graphnn.viz.explorer import to_explorer  # noqa: F401

from graphnn.ir.graph import Graph as _Graph

_Graph.svg_renderer = staticmethod(to_svg)

__all__ = [
    "to_dot",
    "to_svg",
    "to_png",
    "to_html",
    "to_explorer",
    "draw",
    "GraphView",
    "summary",
    "phases",
    "stage_text",
    "write_stages",
    "trace_stages",
    "Stage",
    "RendererNotFound",
    "renderer_available",
]
