"""SummaryWriter: torch.utils.tensorboard's writer, writing TensorBoard event files without TensorFlow."""

from __future__ import annotations

import os
import socket
import time
from datetime import datetime
from itertools import count

import numpy as np

from . import summary as S
from .record_file import frame

_UID = count()


def _numpy(x) -> np.ndarray:
    """A graphnn tensor, NumPy array or Python number as an array."""
    if hasattr(x, "detach"):
        x = x.detach()
    if hasattr(x, "numpy"):
        x = x.numpy()
    return np.asarray(x)


def _number(tag: str, x) -> float:
    a = _numpy(x)
    if a.size != 1:
        raise ValueError(f"add_scalar {tag!r}: expected one number, got an array of shape {tuple(a.shape)}")
    return float(a.reshape(()))


def default_log_dir(comment: str = "") -> str:
    """runs/<Mon01_12-30-45>_<host><comment>, as PyTorch names a run."""
    return os.path.join("runs", datetime.now().strftime("%b%d_%H-%M-%S") + "_" + socket.gethostname() + comment)


class EventFileWriter:
    """Appends framed Event records to events.out.tfevents.<time>.<host>.<pid>.<uid><suffix> in log_dir."""

    def __init__(self, log_dir: str, max_queue: int = 10, flush_secs: float = 120, filename_suffix: str = ""):
        os.makedirs(log_dir, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}.{next(_UID)}"
        self.path = os.path.join(log_dir, name + filename_suffix)
        self.max_queue, self.flush_secs = max(1, int(max_queue)), flush_secs
        self._queue: list[bytes] = []
        self._last_flush = time.monotonic()
        self._file = open(self.path, "wb")
        self.add_event(S.event(time.time(), 0, file_version="brain.Event:2"))
        self.flush()

    def add_event(self, event: bytes) -> None:
        if self._file is None:
            raise RuntimeError(f"SummaryWriter: {self.path} is closed")
        self._queue.append(frame(event))
        if len(self._queue) >= self.max_queue or time.monotonic() - self._last_flush >= self.flush_secs:
            self.flush()

    def flush(self) -> None:
        if self._file is None:
            return
        self._file.write(b"".join(self._queue))
        self._file.flush()
        self._queue.clear()
        self._last_flush = time.monotonic()

    def close(self) -> None:
        if self._file is not None:
            self.flush()
            self._file.close()
            self._file = None


def _chw_to_hwc(tag: str, img: np.ndarray, dataformats: str) -> np.ndarray:
    """An image in dataformats (CHW, HWC, HW, NCHW, NHWC) as uint8 HWC; floats are taken in [0, 1]."""
    fmt = dataformats.upper()
    if img.ndim != len(fmt) or sorted(fmt) != sorted(set(fmt)) or not set(fmt) <= set("NCHW"):
        raise ValueError(f"add_image {tag!r}: an array of shape {tuple(img.shape)} does not match {dataformats!r}")
    if "N" in fmt:  # a grid of at most 8 columns
        img = np.transpose(img, [fmt.index(c) for c in ("N", "C", "H", "W") if c in fmt])
        if "C" not in fmt:
            img = img[:, None]
        n, c, h, w = img.shape
        cols = min(n, 8)
        rows = -(-n // cols)
        grid = np.zeros((c, rows * h, cols * w), dtype=img.dtype)
        for i in range(n):
            r, k = divmod(i, cols)
            grid[:, r * h : (r + 1) * h, k * w : (k + 1) * w] = img[i]
        img = grid.transpose(1, 2, 0)
    else:
        img = np.transpose(img, [fmt.index(c) for c in ("H", "W", "C") if c in fmt])
        if "C" not in fmt:
            img = img[:, :, None]
    if img.shape[2] not in (1, 3, 4):
        raise ValueError(f"add_image {tag!r}: {img.shape[2]} channels (1, 3 or 4 can be shown)")
    if img.dtype != np.uint8:
        img = (np.clip(img.astype(np.float64), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return np.ascontiguousarray(img)


class SummaryWriter:
    """Writes scalars, text, histograms, images and hparams to a TensorBoard log directory
    (`tensorboard --logdir runs`), as torch.utils.tensorboard.SummaryWriter."""

    def __init__(
        self,
        log_dir: str | None = None,
        comment: str = "",
        purge_step: int | None = None,
        max_queue: int = 10,
        flush_secs: int = 120,
        filename_suffix: str = "",
    ):
        self.log_dir = str(log_dir) if log_dir is not None else default_log_dir(comment)
        self.purge_step, self.max_queue, self.flush_secs = purge_step, max_queue, flush_secs
        self.filename_suffix = filename_suffix
        self.file_writer: EventFileWriter | None = None
        self.all_writers: dict[str, EventFileWriter] = {}
        self.graphs: list[tuple[str, str]] = []  # add_graph calls: (model repr, graphnn IR text or '')
        self._get_file_writer()

    def get_logdir(self) -> str:
        return self.log_dir

    def _get_file_writer(self) -> EventFileWriter:
        if self.file_writer is None:
            self.file_writer = EventFileWriter(self.log_dir, self.max_queue, self.flush_secs, self.filename_suffix)
            self.all_writers = {self.log_dir: self.file_writer}
            if self.purge_step is not None:
                self.file_writer.add_event(S.event(time.time(), self.purge_step, session_log=S.session_start()))
                self.purge_step = None
        return self.file_writer

    def _add(self, value: bytes, global_step, walltime, writer: EventFileWriter | None = None) -> None:
        wall = time.time() if walltime is None else float(walltime)
        step = 0 if global_step is None else int(_number("global_step", global_step))
        (writer or self._get_file_writer()).add_event(S.event(wall, step, S.summary(value)))

    def add_scalar(
        self,
        tag: str,
        scalar_value,
        global_step=None,
        walltime=None,
        new_style: bool = False,
        double_precision: bool = False,
    ) -> None:
        self._add(S.scalar_value(tag, _number(tag, scalar_value)), global_step, walltime)

    def add_scalars(self, main_tag: str, tag_scalar_dict: dict, global_step=None, walltime=None) -> None:
        """One run per key (log_dir/<main_tag>_<key>), each with the scalar under main_tag, as PyTorch."""
        for tag, v in tag_scalar_dict.items():
            path = os.path.join(self.log_dir, main_tag.replace("/", "_") + "_" + tag)
            w = self.all_writers.get(path)
            if w is None:
                w = self.all_writers[path] = EventFileWriter(
                    path, self.max_queue, self.flush_secs, self.filename_suffix
                )
            self._add(S.scalar_value(main_tag, _number(tag, v)), global_step, walltime, w)

    def add_histogram(
        self, tag: str, values, global_step=None, bins="tensorflow", walltime=None, max_bins=None
    ) -> None:
        self._add(S.histogram_value(tag, _numpy(values), bins, max_bins), global_step, walltime)

    def add_text(self, tag: str, text_string: str, global_step=None, walltime=None) -> None:
        self._add(S.text_value(tag, str(text_string)), global_step, walltime)

    def add_image(self, tag: str, img_tensor, global_step=None, walltime=None, dataformats: str = "CHW") -> None:
        self._add(S.image_value(tag, _chw_to_hwc(tag, _numpy(img_tensor), dataformats)), global_step, walltime)

    def add_images(self, tag: str, img_tensor, global_step=None, walltime=None, dataformats: str = "NCHW") -> None:
        self.add_image(tag, img_tensor, global_step, walltime, dataformats)

    def add_figure(self, tag: str, figure, global_step=None, close: bool = True, walltime=None) -> None:
        """A matplotlib figure (or list of figures), rendered to RGBA."""
        figs = figure if isinstance(figure, list) else [figure]
        imgs = []
        for fig in figs:
            fig.canvas.draw()
            imgs.append(np.asarray(fig.canvas.buffer_rgba())[:, :, :4].transpose(2, 0, 1))
            if close:
                import matplotlib.pyplot as plt

                plt.close(fig)
        fmt = "NCHW" if isinstance(figure, list) else "CHW"
        self.add_image(tag, np.stack(imgs) if isinstance(figure, list) else imgs[0], global_step, walltime, fmt)

    def add_graph(self, model, input_to_model=None, verbose: bool = False, use_strict_trace: bool = True) -> None:
        """Accepted (TensorBoard's graph plugin needs a TensorFlow GraphDef): records the call and writes the
        model's repr and graphnn's traced IR (no compilation) of model(input_to_model) as text under the tag 'graph'."""
        ir_text = ""
        if input_to_model is not None:
            try:
                from graphnn import no_grad
                from graphnn.compiler.program import trace_function

                args = tuple(input_to_model) if isinstance(input_to_model, (tuple, list)) else (input_to_model,)
                with no_grad():
                    tracer = trace_function(model, args, {}, {}, type(model).__name__)[0]
                ir_text = str(tracer.graph)
            except Exception as e:  # the graph is informative only: never fail a training program on it
                ir_text = f"(graphnn could not trace the model: {type(e).__name__}: {e})"
        self.graphs.append((repr(model), ir_text))
        text = "    " + repr(model).replace("\n", "\n    ")
        if ir_text:
            text += "\n\n    " + ir_text.replace("\n", "\n    ")
        self._add(S.text_value("graph", text), 0, None)

    def add_hparams(
        self, hparam_dict: dict, metric_dict: dict, hparam_domain_discrete=None, run_name=None, global_step=None
    ) -> None:
        """The hparams plugin's records in a run of their own (log_dir/<run_name or time>), metrics as scalars."""
        if not isinstance(hparam_dict, dict) or not isinstance(metric_dict, dict):
            raise TypeError("add_hparams: hparam_dict and metric_dict must be dicts")
        exp, start, end = S.hparams_values(hparam_dict, metric_dict, hparam_domain_discrete)
        with SummaryWriter(os.path.join(self.log_dir, run_name or str(time.time()))) as w:
            for v in (exp, start, end):
                w._add(v, global_step, None)
            for k, v in metric_dict.items():
                w.add_scalar(k, v, global_step)

    def add_embedding(
        self, mat, metadata=None, label_img=None, global_step=None, tag: str = "default", metadata_header=None
    ) -> None:
        """Writes the projector's files: <log_dir>/<step>/<tag>/tensors.tsv (and metadata.tsv), and
        projector_config.pbtxt naming them."""
        m = _numpy(mat).astype(np.float64)
        if m.ndim != 2:
            raise ValueError(f"add_embedding: mat must be 2-D (N, D), got shape {tuple(m.shape)}")
        sub = os.path.join(f"{global_step or 0:05d}", tag)
        path = os.path.join(self.log_dir, sub)
        os.makedirs(path, exist_ok=True)
        np.savetxt(os.path.join(path, "tensors.tsv"), m, delimiter="\t", fmt="%.8g")
        entry = f'embeddings {{\n  tensor_name: "{tag}:{global_step or 0:05d}"\n  tensor_path: "{sub}/tensors.tsv"\n'
        if metadata is not None:
            rows = ["\t".join(map(str, r)) if isinstance(r, (list, tuple)) else str(r) for r in metadata]
            if metadata_header:
                rows.insert(0, "\t".join(metadata_header))
            with open(os.path.join(path, "metadata.tsv"), "w") as f:
                f.write("\n".join(rows) + "\n")
            entry += f'  metadata_path: "{sub}/metadata.tsv"\n'
        with open(os.path.join(self.log_dir, "projector_config.pbtxt"), "a") as f:
            f.write(entry + "}\n")

    def flush(self) -> None:
        for w in self.all_writers.values():
            w.flush()

    def close(self) -> None:
        for w in self.all_writers.values():
            w.close()
        self.all_writers = {}
        self.file_writer = None

    def __enter__(self) -> "SummaryWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
