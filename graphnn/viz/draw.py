"""Draw IR graphs as Graphviz DOT, and through Graphviz as SVG or PNG (`graphnn.viz`).

Each op is a box with its name, attributes and output type; graph inputs are ellipses (activations) or
cylinders (parameters, constants, gradients); outputs are houses. Fill colour tells forward, backward and
optimizer-update ops apart. Without a fusion plan, ops are grouped in boxes by module path ("Net.conv1");
with one, each box is a kernel (a value computed inline in several kernels is drawn once per kernel).
`depth=N` collapses every module N levels below the root into a single node; in a training step its parameters
are listed in that node, and the other ops join boxes too (step_boxes.py): with every gradient op in a box, the
gradients are drawn rising beside the forward.
"""

from __future__ import annotations

import html
from collections import Counter

from graphnn.ir.graph import Graph, format_attr

from graphnn.viz import render
from graphnn.viz.paths import GRAD, OPTIMIZER, module_path, node_paths, phases  # noqa: F401 (phases: re-exported)
from graphnn.viz.stages import Stage, plural
from graphnn.viz.step_boxes import step_boxes

PHASE_FILL = {"forward": "#ffffff", "backward": "#fde0d2", "update": "#dcefd6"}
PHASE_LINE = {"forward": "#3d5a80", "backward": "#b5523b", "update": "#3f7f3a"}
PARAM_TEXT = "#7a5c00"  # parameters listed in their module's box
KIND_STYLE = {  # graph inputs by meta["kind"]: (shape, fill)
    "input": ("ellipse", "#cfe2f3"),
    "param": ("cylinder", "#fff2b3"),
    "const": ("cylinder", "#e6e6e6"),
    "grad": ("cylinder", "#f6c9c0"),
    "cotangent": ("ellipse", "#f6c9c0"),
}
FONT = "Helvetica"
ATTR_WIDTH = 34


def _q(s: str) -> str:
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class _Html(str):
    """A Graphviz HTML-like label, written as <...> instead of a quoted string."""


def _attrs(**kw) -> str:
    return ", ".join(f"{k}={f'<{v}>' if isinstance(v, _Html) else _q(v)}" for k, v in kw.items() if v is not None)


def _e(s: str) -> str:
    return html.escape(str(s), quote=True)


def as_stage(obj, plan=None, stage: str | None = None) -> Stage:
    """A Stage from an ir.Graph (+ FusionPlan), a Stage, or a compiled callable (its `.graphs[stage]`)."""
    if isinstance(obj, Stage):
        return obj if plan is None else Stage(obj.name, obj.graph, plan, obj.modules, obj.output_labels, obj.title)
    if isinstance(obj, Graph):
        return Stage(stage or "graph", obj, plan, title=obj.name)
    graphs = getattr(obj, "graphs", None)
    if isinstance(graphs, dict):
        key = stage or "optimized"
        if key in ("fused", "fused_backward"):
            g = graphs["lowered" if key == "fused" else "lowered_backward"]  # the graphs the plans partition
            return Stage(key, g, graphs[key], title=f"{g.name}: {key.replace('_', ' ')}")
        return Stage(key, graphs[key], plan, title=f"{graphs[key].name}: {key}")
    raise TypeError(f"cannot draw a {type(obj).__name__}: pass an ir.Graph, a Stage or a compiled callable")


def _op_label(node, width: int = ATTR_WIDTH) -> str:
    attrs = [f"{k}={format_attr(v)}".replace(", ", ",") for k, v in sorted(node.attrs.items())]
    if not node.inputs and "value" in node.attrs and not hasattr(node.attrs["value"], "shape"):  # a scalar fill
        head, attrs = f"{node.op} {format_attr(node.attrs.get('value'))}", []
    else:
        head = node.op
    lines, cur = [], ""
    for a in attrs:
        a = a if len(a) <= 2 * width else a[: 2 * width - 1] + "…"
        if cur and len(cur) + len(a) + 1 > width:
            lines.append(cur)
            cur = a
        else:
            cur = f"{cur} {a}".strip()
    if cur:
        lines.append(cur)
    types = ", ".join(str(o.type) for o in node.outputs)
    parts = [f"<b>{_e(head)}</b>"] + [f'<font point-size="9" color="#555555">{_e(s)}</font>' for s in lines]
    parts.append(f'<font point-size="10">{_e(types)}</font>')
    return _Html("<br/>".join(parts))


class _Builder:
    """Accumulates DOT statements for one graph."""

    def __init__(self, st: Stage, depth: int | None):
        self.st, self.g, self.plan, self.depth = st, st.graph, st.plan, depth
        self.names = self.g._names()
        self.phase = phases(self.g)
        self.decl: dict = {}  # unit id -> DOT attribute string
        self.cluster_of: dict = {}  # unit id -> cluster key (tuple path) or None
        self.edges: dict = {}  # (src, dst) -> attribute string
        self.collapsed: dict = {}  # unit id -> list of nodes
        self.input_pos = {v.id: i for i, v in enumerate(self.g.inputs)}
        self.node_pos = {n.id: i for i, n in enumerate(self.g.nodes)}
        self.training = "update" in self.phase.values()
        self.paths = node_paths(self.g, st.paths) if self.training else {}
        self.collapsed_path: dict = {}  # unit id -> the path of a collapsed box
        self.step = self.training and depth is not None  # a collapsed training step (see step_boxes.py)
        self.chain_titles: dict = {}  # box key of a chain of functional ops -> its title
        self.box_kernels: dict = {}  # box key -> the kernels its ops are in
        self.in_box: dict = {}  # unit id -> the parameters listed in it (not drawn as nodes)
        self.hidden: set = set()  # units of those parameters
        self.places = self._placements()
        # the gradient flows up beside the forward when every module's gradient ops are in boxes (a U: forward
        # down, loss at the bottom, gradients up); op by op it stays downward, the layout of the detail
        self.mirrored = self.step and all(
            self.places[n.id][0][0] in self.collapsed
            for n in self.g.nodes
            if self.phase[n.id] == "backward" and n.meta.get("scope")
        )

    # -- where each node is drawn --------------------------------------------------------------------------
    def _scope_key(self, n) -> str | None:
        """The path of the collapsed box that `n` is drawn in, or None. In a training step the parameter updates
        are one box (`--depth 2`: one per module, 3: per parameter) and the loss is one box."""
        scope = n.meta.get("scope")
        if self.training:
            path = self.paths[n.id]
            if path.split(".")[0] == OPTIMIZER:
                return ".".join(path.split(".")[: max(1, self.depth or 0)])
            if scope and self.st.modules and scope.split(".")[0] not in self.st.modules:
                return scope.split(".")[0]  # a loss module, called outside the model
        if self.depth is None or not scope:
            return None
        parts = scope.split(".")
        key = ".".join(parts[: self.depth + 1]) if len(parts) - 1 >= self.depth else None
        if key and self.training and self.phase[n.id] == "backward":
            return GRAD + key  # a module's gradient ops: a box of their own, after the loss
        return key

    def _placements(self) -> dict:
        """node id -> [(unit id, kernel index or None)], the primary placement first."""
        kernels: dict = {}
        if self.plan is not None:
            for k, grp in enumerate(self.plan.groups):
                for n in grp.nodes:
                    kernels.setdefault(n.id, []).append(k)
                    if any(n is r.producer for r in grp.roots):  # where a value is materialized comes first
                        kernels[n.id].remove(k)
                        kernels[n.id].insert(0, k)
        keys = {n.id: self._scope_key(n) for n in self.g.nodes}
        if self.step:
            keys, self.chain_titles = step_boxes(self.g, keys, self.phase)
        else:
            keys = {i: [k] if k else [] for i, k in keys.items()}
        by_key: dict = {}
        for n in self.g.nodes:
            for key in keys[n.id]:
                by_key.setdefault(key, []).append(n)
        places: dict = {}
        unit: dict = {}  # box key -> (unit id, the kernel it sits in or None)
        for key, nodes in by_key.items():
            ks = {k for n in nodes for k in kernels.get(n.id, [None])}
            ops = [n for n in nodes if n.inputs] or nodes  # a constant is inlined into every kernel using it
            self.box_kernels[key] = sorted({k for n in ops for k in kernels.get(n.id, [])})
            home = ks.pop() if len(ks) == 1 and not self.step else None  # a training step's boxes name kernels
            uid = "m_" + "".join(c if c.isalnum() else "_" for c in key)
            uid = uid if uid not in self.collapsed else f"{uid}_{len(self.collapsed)}"
            unit[key] = (uid, home)
            self.collapsed[uid] = nodes
            self.collapsed_path[uid] = key
        for n in self.g.nodes:
            if keys[n.id]:
                places[n.id] = [unit[k] for k in keys[n.id]]
        for i, n in enumerate(self.g.nodes):
            if n.id not in places:
                ks = kernels.get(n.id, [None])
                places[n.id] = [(f"n{i}" if j == 0 else f"n{i}_k{k}", k) for j, k in enumerate(ks)]
        return places

    def _src(self, v, kernel, dst: str | None = None) -> str:
        if v.producer is None:
            return f"in{self.input_pos[v.id]}"
        options = self.places[v.producer.id]
        if any(u == dst for u, _ in options):  # a constant drawn in the consumer's box too
            return dst
        return next((u for u, k in options if k == kernel and kernel is not None), options[0][0])

    # -- statements ------------------------------------------------------------------------------------------
    def _params_in_boxes(self) -> dict:
        """Input position -> the module box a parameter is listed in, in a collapsed training step: a parameter
        read only by one module's box, that box's gradient and the optimizer."""
        if not self.step:
            return {}
        users = self.g.users()
        out = {}
        for i, v in enumerate(self.g.inputs):
            units = {self.collapsed_path.get(u, u) for c, _ in users.get(v.id, []) for u, _ in self.places[c.id]}
            mods = [u for u in units if not u.startswith((GRAD, OPTIMIZER))]
            if v.meta.get("kind") != "param" or len(mods) != 1 or not self._module_type(mods[0]):
                continue
            if all(u in (mods[0], GRAD + mods[0]) or u.split(".")[0] == OPTIMIZER for u in units):
                out[i] = next(u for u, p in self.collapsed_path.items() if p == mods[0])
        return out

    def build(self) -> None:
        in_box = self._params_in_boxes()
        for i, box in in_box.items():
            self.in_box.setdefault(box, []).append(self.g.inputs[i])
            self.hidden.add(f"in{i}")
        for i, v in enumerate(self.g.inputs):
            if i in in_box:
                continue
            kind = v.meta.get("kind", "input")
            shape, fill = KIND_STYLE.get(kind, KIND_STYLE["input"])
            label = _Html(f'<b>{_e(v.name or self.names[v.id])}</b><br/><font point-size="10">{_e(v.type)}</font>')
            self.decl[f"in{i}"] = _attrs(
                shape=shape,
                style="filled",
                fillcolor=fill,
                label=label,
                tooltip=f"%{self.names[v.id]}: {v.type} [{kind}]",
            )
            self.cluster_of[f"in{i}"] = None
        done: set = set()
        for n in self.g.nodes:
            for uid, kernel in self.places[n.id]:
                if uid not in done:
                    done.add(uid)
                    self._declare(uid, n, kernel)
                for v in n.inputs:
                    self._edge(self._src(v, kernel, uid), uid, v, n)
        rest = self.training and len(self.g.outputs) > 3  # a training step's gradients and updated parameters
        for j, v in enumerate(self.g.outputs):
            if rest and j:
                self._other_outputs(v)
                continue
            uid = f"out{j}"
            label = self.st.output_labels.get(j, f"output {j}")
            self.decl[uid] = _attrs(
                shape="house",
                style="filled",
                fillcolor="#eeeeee",
                fontsize=10,
                label=_Html(f'{_e(label)}<br/><font point-size="9">{_e(v.type)}</font>'),
            )
            self.cluster_of[uid] = None
            self._edge(self._src(v, None), uid, v, None)

    def _other_outputs(self, v) -> None:
        """All outputs but the first (the loss) of a training step, as one house."""
        if "out_rest" not in self.decl:
            n = len(self.g.outputs) - 1
            label = _Html(f"{n} more outputs<br/>" + '<font point-size="9">gradients, updated parameters</font>')
            self.decl["out_rest"] = _attrs(shape="house", style="filled", fillcolor="#eeeeee", fontsize=10, label=label)
            self.cluster_of["out_rest"] = None
        self._edge(self._src(v, None), "out_rest", v, None)

    def _box_title(self, path: str) -> tuple:
        """(bold name, type after a colon, phase) of a collapsed box."""
        grad = path.startswith(GRAD)
        phase = "backward" if grad else "update" if path.split(".")[0] == OPTIMIZER else "forward"
        if path in self.chain_titles:
            return self.chain_titles[path], "", phase
        typ = self._module_type(path.removeprefix(GRAD)) or ("parameter updates" if path == OPTIMIZER else "")
        parent, _, name = path.removeprefix(GRAD).rpartition(".")
        if parent:  # 'blocks.0' for the box of GPT.0, a block of GPT.blocks (a ModuleList)
            name = module_path(path.removeprefix(GRAD), self.st.paths).removeprefix(parent + ".")
        return (f"gradient of {name}" if grad else name), typ, phase  # (Graphviz fonts lack ∇)

    def _module_type(self, scope: str) -> str:
        """The class name of the module that records `scope` ('' for none)."""
        return self.st.modules.get(scope) or self.st.modules.get(module_path(scope, self.st.paths), "")

    def _declare_box(self, uid: str, kernel) -> None:
        nodes = self.collapsed[uid]
        path = self.collapsed_path[uid]
        name, typ, box_phase = self._box_title(path)
        ops = Counter(m.op for m in nodes)
        if len(ops) > 6:  # the most frequent ops only: a box stays narrow
            ops = Counter(dict(ops.most_common(5) + [("…", 1)]))
        summary = ", ".join(f"{op}×{c}" if c > 1 else op for op, c in ops.items())
        notes = [] if summary == name else [summary]
        if self.step and self.box_kernels.get(path):
            notes.append(kernel_range(self.box_kernels[path]))
        lines = [f"<b>{_e(name)}</b>{': ' + _e(typ) if typ else ''}"]
        lines += [f'<font point-size="9" color="#555555">{_e(" · ".join(notes))}</font>'] if notes else []
        if uid in self.in_box:
            lines.append(f'<font point-size="9" color="{PARAM_TEXT}">{_e(self._params_line(uid))}</font>')
        lines.append(f'<font point-size="10">{_e(nodes[-1].outputs[0].type)}</font>')
        self.decl[uid] = _attrs(
            shape="box3d",
            style="filled",
            fillcolor=PHASE_FILL[box_phase] if box_phase != "forward" else "#eef3fb",
            color=PHASE_LINE[box_phase],
            label=_Html("<br/>".join(lines)),
            tooltip=f"{path}: {len(nodes)} ops",
        )
        self.cluster_of[uid] = ("k", kernel) if kernel is not None else self._module_cluster(path.split(".")[:-1])

    def _params_line(self, uid: str) -> str:
        """The parameters listed in a module's box: 'weight f32[6,1,5,5], bias f32[6]', or their count."""
        params = self.in_box[uid]
        if len(params) > 2:
            return f"{len(params)} parameters, {sum(v.type.size for v in params):,} values"
        prefix = module_path(self.collapsed_path[uid], self.st.paths).partition(".")[2] + "."
        return ", ".join(f"{(v.name or '').removeprefix(prefix)} {v.type}" for v in params)

    def _declare(self, uid: str, n, kernel) -> None:
        if uid in self.collapsed:
            self._declare_box(uid, kernel)
            return
        phase = self.phase[n.id]
        i = self.node_pos[n.id]
        args = ", ".join("%" + self.names[v.id] for v in n.inputs)
        outs = ", ".join("%" + self.names[o.id] for o in n.outputs)
        scope = n.meta.get("scope")
        small = not n.inputs and not n.outputs[0].shape
        style = "rounded,filled" + (",dashed" if uid != f"n{i}" else "")
        self.decl[uid] = _attrs(
            shape="box",
            style=style,
            fillcolor=PHASE_FILL[phase],
            color=PHASE_LINE[phase],
            label=_op_label(n),
            fontsize=9 if small else None,
            tooltip=f"{outs} = {n.op}({args})" + (f"  # {scope}" if scope else "") + f" [{phase}]",
        )
        if kernel is not None:
            self.cluster_of[uid] = ("k", kernel)
        elif self.plan is None and scope:
            self.cluster_of[uid] = self._module_cluster(scope.split("."))
        else:
            self.cluster_of[uid] = None

    def _module_cluster(self, parts: list):
        return ("m",) + tuple(parts) if parts and self.plan is None else None

    def _edge(self, src: str, dst: str, v, consumer) -> None:
        if src == dst or (src, dst) in self.edges or src in self.hidden:
            return
        phase = self.phase[consumer.id] if consumer is not None else "forward"
        kind = v.meta.get("kind") if v.producer is None else None
        attrs = dict(color="#999999" if phase == "forward" else PHASE_LINE[phase])
        if kind in ("param", "const", "grad"):
            attrs["style"] = "dashed"
            if phase == "update":
                attrs["constraint"] = "false"  # keep parameters next to their forward use
        if v.producer is not None and len(v.producer.outputs) > 1:
            attrs["taillabel"] = str(v.index)
        if self.mirrored and phase == "backward" and v.producer is not None and self.phase[v.producer.id] == "backward":
            attrs["dir"] = "back"  # drawn from consumer to producer: the gradient's boxes rank upward
            self.edges.setdefault((dst, src), _attrs(**attrs))
            return
        self.edges[(src, dst)] = _attrs(**attrs)

    # -- output ----------------------------------------------------------------------------------------------
    def _cluster_attrs(self, key) -> str:
        if key[0] == "k":
            k = key[1]
            grp = self.plan.groups[k]
            root = grp.root.producer
            phase = self.phase[root.id]
            scopes = {n.meta["scope"] for n in grp.nodes if n.meta.get("scope")}
            scopes = sorted(s for s in scopes if not any(t.startswith(s + ".") for t in scopes))
            scopes = scopes[:2] + (["…"] if len(scopes) > 2 else [])
            label = " · ".join([f"kernel {k}", grp.pattern] + scopes + ([] if phase == "forward" else [phase]))
            return _attrs(
                label=label,
                style="rounded,dashed",
                color=PHASE_LINE[phase],
                fontcolor=PHASE_LINE[phase],
                fontsize=10,
                penwidth=1.4,
            )
        path = ".".join(key[1:])
        typ = self.st.modules.get(path)
        label = path if not typ else typ if typ == key[-1] else f"{key[-1]}: {typ}"
        label = f"gradient of {path.removeprefix(GRAD)}" if path.startswith(GRAD) else label  # (fonts lack ∇)
        return _attrs(label=label, style="rounded,filled", fillcolor="#f4f6fa", color="#b8c2d6", fontsize=10)

    def lines(self) -> list:
        tree: dict = {}  # cluster key -> {"units": [unit ids], "children": [cluster keys]}
        root = {"units": [], "children": []}

        def node_of(key):
            if key is None:
                return root
            if key not in tree:
                tree[key] = {"units": [], "children": []}
                parent = node_of(key[:-1] if key[0] == "m" and len(key) > 2 else None)
                parent["children"].append(key)
            return tree[key]

        for uid in self.decl:
            node_of(self.cluster_of.get(uid))["units"].append(uid)
        out: list = []

        def emit(entry, indent):
            pad = "  " * indent
            for uid in entry["units"]:
                out.append(f"{pad}{uid} [{self.decl[uid]}];")
            for key in entry["children"]:
                name = "cluster_" + "_".join(str(p) for p in key).replace(".", "_")
                name = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
                out.append(f"{pad}subgraph {name} {{")
                out.append(f"{pad}  graph [{self._cluster_attrs(key)}];")
                emit(tree[key], indent + 1)
                out.append(f"{pad}}}")

        emit(root, 1)
        out += [f"  {s} -> {d} [{a}];" for (s, d), a in self.edges.items()]
        return out

    def legend(self) -> list:
        """The shapes and colours the picture uses."""
        kinds = {v.meta.get("kind", "input") for i, v in enumerate(self.g.inputs) if f"in{i}" not in self.hidden}
        ops = {i for i, p in self.places.items() if p[0][0] not in self.collapsed}
        phs = {self.phase[i] for i in ops}
        boxes = {self._box_title(path)[2] for path in self.collapsed_path.values()}
        items = [(f"legend_{k}", KIND_STYLE[k][0], KIND_STYLE[k][1], k, "#000000") for k in KIND_STYLE if k in kinds]
        items += [(f"legend_{p}", "box", PHASE_FILL[p], f"{p} op", PHASE_LINE[p]) for p in PHASE_FILL if p in phs]
        items.append(("legend_output", "house", "#eeeeee", "output", "#000000"))
        if any(len(self.places[i]) > 1 for i in ops):
            items.append(("legend_copy", "box", "#ffffff", "recomputed in this kernel too", PHASE_LINE["forward"]))
        if "forward" in boxes:
            module = "collapsed module"
            if self.in_box:
                module = _Html(f'{module}<br/><font color="{PARAM_TEXT}">its parameters</font>')
            items.append(("legend_module", "box3d", "#eef3fb", module, PHASE_LINE["forward"]))
        if "backward" in boxes:
            items.append(("legend_grad", "box3d", PHASE_FILL["backward"], "its gradient", PHASE_LINE["backward"]))
        if "update" in boxes:
            items.append(("legend_updates", "box3d", PHASE_FILL["update"], "parameter updates", PHASE_LINE["update"]))
        out = [
            "  subgraph cluster_legend {",
            f"    graph [{_attrs(label='legend', style='rounded', color='#cccccc', fontsize=10)}];",
        ]
        for name, shape, fill, text, line in items:
            style = ("rounded,filled" + (",dashed" if name == "legend_copy" else "")) if shape == "box" else "filled"
            out.append(_stmt(name, shape=shape, style=style, fillcolor=fill, color=line, label=text, fontsize=9))
        if any(k and k[0] == "k" for k in self.cluster_of.values()):
            out += _sample_box("kernel", "kernel (fusion group)", "ops in one loop", style="rounded,dashed")
        elif any(k and k[0] == "m" for k in self.cluster_of.values()):
            out += _sample_box(
                "module", "module", "its ops", style="rounded,filled", fillcolor="#f4f6fa", color="#b8c2d6"
            )
        out.append("  }")
        return out


def kernel_range(ks: list) -> str:
    """'kernel 4', 'kernels 3–5' (consecutive) or '7 kernels'."""
    if len(ks) == 1:
        return f"kernel {ks[0]}"
    return f"kernels {ks[0]}–{ks[-1]}" if ks[-1] - ks[0] == len(ks) - 1 else f"{len(ks)} kernels"


def _stmt(name: str, indent: int = 4, **attrs) -> str:
    return " " * indent + f"{name} [{_attrs(**attrs)}];"


def _sample_box(key: str, title: str, text: str, **style) -> list:
    """A legend entry for a cluster: a box drawn like one, its title above the text."""
    label = _Html(f'{_e(title)}<br/><font point-size="8" color="#555555">{_e(text)}</font>')
    return [_stmt(f"legend_{key}_cluster", shape="box", label=label, fontsize=9, **style)]


def to_dot(
    graph,
    plan=None,
    *,
    stage: str | None = None,
    depth: int | None = None,
    title: str | None = None,
    legend: bool = True,
) -> str:
    """DOT text for an ir.Graph (with an optional FusionPlan), a Stage, or a compiled callable's `stage`."""
    st = as_stage(graph, plan, stage)
    if depth is not None and depth < 0:
        raise ValueError("depth must be >= 0")
    b = _Builder(st, depth)
    b.build()
    g = st.graph
    n_kernels = f", {plural(len(st.plan.groups), 'kernel')}" if st.plan is not None else ""
    counts = f"{plural(len(g.nodes), 'op')}, {plural(len(g.inputs), 'input')}, {plural(len(g.outputs), 'output')}"
    head = f"{title or st.title or g.name}\n{counts}{n_kernels}"
    lines = [
        f"digraph {_q(g.name)} {{",
        _stmt(
            "graph",
            2,
            rankdir="TB",
            fontname=FONT,
            label=head,
            labelloc="t",
            fontsize=14,
            nodesep=0.25,
            ranksep=0.25 if b.mirrored else 0.35,
        ),
        f"  node [{_attrs(fontname=FONT, fontsize=11, margin='0.08,0.04')}];",
        f"  edge [{_attrs(fontname=FONT, fontsize=8, arrowsize=0.6)}];",
    ]
    lines += b.lines()
    if legend:
        lines += b.legend()
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_svg(graph, plan=None, **kw) -> str:
    """SVG text of the drawing (needs Graphviz: see graphnn/viz/render.py)."""
    return render.render(to_dot(graph, plan, **kw), "svg").decode()


def to_png(graph, plan=None, **kw) -> bytes:
    """PNG bytes of the drawing (needs Graphviz: see graphnn/viz/render.py)."""
    return render.render(to_dot(graph, plan, **kw), "png")


class GraphView:
    """A drawable graph: `.dot`, `.svg()`, `.png()`, `.save(path)`; shows as SVG in Jupyter."""

    def __init__(self, graph, plan=None, **kw):
        self.stage = as_stage(graph, plan, kw.pop("stage", None))
        self.kw = kw

    @property
    def dot(self) -> str:
        return to_dot(self.stage, **self.kw)

    def svg(self) -> str:
        return to_svg(self.stage, **self.kw)

    def png(self) -> bytes:
        return to_png(self.stage, **self.kw)

    def save(self, path: str) -> list:
        """Write by extension (.svg .png .dot .html .txt); returns the paths written."""
        from graphnn.viz.files import write_stages

        return write_stages({self.stage.name: self.stage}, path, depth=self.kw.get("depth"))

    def _repr_svg_(self):
        try:
            return self.svg()
        except render.RendererNotFound:
            return None

    def __str__(self) -> str:
        from graphnn.viz.files import stage_text

        return stage_text(self.stage)

    def __repr__(self) -> str:
        return f"<GraphView {self.stage.title or self.stage.name}: {len(self.stage.graph.nodes)} ops>"


def draw(model, *input_shapes, stage: str = "fused", train: bool = False, depth: int | None = None) -> GraphView:
    """Trace `model` on random inputs of the given shapes and return a view of one stage
    ('traced', 'optimized', 'backward', 'fused'), e.g. `draw(Net(), (1, 1, 32, 32))` in a notebook."""
    from graphnn.viz.inputs import example_inputs
    from graphnn.viz.stages import trace_stages

    stages = trace_stages(model, example_inputs([tuple(s) for s in input_shapes]), [stage], train=train)
    return GraphView(stages[stage], depth=depth)
