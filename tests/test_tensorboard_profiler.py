"""graphnn.utils.tensorboard (event files decoded back) and graphnn.profiler (table, Chrome trace, schedule)."""

import glob
import json
import os
import struct

import numpy as np
import pytest

import graphnn as torch
import graphnn.nn as nn
from graphnn.core import dispatch
from graphnn.profiler import (
    ProfilerAction,
    ProfilerActivity,
    profile,
    record_function,
    schedule,
    tensorboard_trace_handler,
)
from graphnn.utils.tensorboard import SummaryWriter
from graphnn.utils.tensorboard.protobuf import decode, varint
from graphnn.utils.tensorboard.record_file import RecordError, crc32c, frame, masked_crc, read_records


def events_of(log_dir: str) -> list[dict]:
    """Decoded events of the (single) event file in log_dir."""
    (path,) = glob.glob(os.path.join(log_dir, "events.out.tfevents.*"))
    return [decode(r) for r in read_records(path)]


def values_of(events: list[dict]) -> list[tuple[int, dict]]:
    """(step, decoded Summary.Value) of every summary event."""
    out = []
    for ev in events:
        for s in ev.get(5, []):
            for v in decode(s)[1]:
                out.append((ev.get(2, [0])[0], decode(v)))
    return out


def test_crc32c_and_framing():
    assert crc32c(b"123456789") == 0xE3069283  # the standard CRC-32C check value
    assert crc32c(b"") == 0
    rec = frame(b"hello")
    assert struct.unpack("<Q", rec[:8])[0] == 5
    assert struct.unpack("<I", rec[8:12])[0] == masked_crc(rec[:8])
    assert rec[12:17] == b"hello" and struct.unpack("<I", rec[17:])[0] == masked_crc(b"hello")
    assert varint(300) == b"\xac\x02" and len(varint(-1)) == 10


def test_corrupt_record_is_an_error(tmp_path):
    p = tmp_path / "f"
    data = bytearray(frame(b"abc") + frame(b"defg"))
    p.write_bytes(bytes(data))
    assert read_records(str(p)) == [b"abc", b"defg"]
    data[13] ^= 1
    p.write_bytes(bytes(data))
    with pytest.raises(RecordError, match="data CRC"):
        read_records(str(p))
    p.write_bytes(frame(b"abc")[:-2])
    with pytest.raises(RecordError, match="truncated"):
        read_records(str(p))


def test_scalars_text_histogram_image_round_trip(tmp_path):
    with SummaryWriter(str(tmp_path), purge_step=3) as w:
        w.add_scalar("loss/train", torch.tensor(0.25), global_step=7, walltime=123.5)
        w.add_scalar("lr", 0.1, 8)
        w.add_text("note", "héllo", 2)
        vals = np.array([-1.0, 0.5, 0.5, 2.0])
        w.add_histogram("w", vals, 4)
        w.add_image("img", np.full((3, 2, 5), 1.0, dtype=np.float32), 5)
        w.add_images("grid", np.zeros((10, 1, 4, 4), dtype=np.uint8), 6)
    evs = events_of(str(tmp_path))
    assert evs[0][3] == [b"brain.Event:2"]
    assert evs[1][2] == [3] and decode(evs[1][7][0]) == {1: [1]}  # SessionLog START at the purge step
    vals_by_tag = {v[1][0].decode(): (step, v) for step, v in values_of(evs)}
    step, v = vals_by_tag["loss/train"]
    assert step == 7 and v[2] == [0.25]
    assert next(e for e in evs if 5 in e and e[2] == [7])[1] == [123.5]
    assert vals_by_tag["lr"][1][2] == [pytest.approx(0.1, rel=1e-7)]  # float32 simple_value
    step, v = vals_by_tag["note/text_summary"]
    tensor = decode(v[8][0])
    assert step == 2 and tensor[1] == [7] and tensor[8] == ["héllo".encode()]
    assert decode(decode(v[9][0])[1][0])[1] == [b"text"]  # plugin_data.plugin_name
    h = decode(vals_by_tag["w"][1][5][0])
    assert (h[1], h[2], h[3], h[4], h[5]) == ([-1.0], [2.0], [4.0], [2.0], [5.5])
    limits, counts = (np.frombuffer(h[f][0], dtype="<f8") for f in (6, 7))
    assert counts.sum() == 4 and len(limits) == len(counts)
    assert np.all(np.diff(limits) > 0) and limits[-1] >= 2.0
    img = decode(vals_by_tag["img"][1][4][0])
    assert (img[1], img[2], img[3]) == ([2], [5], [3]) and img[4][0].startswith(b"\x89PNG")
    grid = decode(vals_by_tag["grid"][1][4][0])
    assert (grid[1], grid[2], grid[3]) == ([8], [32], [1])  # 10 images: 2 rows of 8 columns


def test_add_scalars_hparams_and_errors(tmp_path):
    w = SummaryWriter(str(tmp_path))
    w.add_scalars("loss", {"train": 1.0, "val": 2.0}, 1)
    w.add_hparams({"lr": 0.1, "opt": "sgd"}, {"hparam/acc": 0.5}, run_name="hp")
    w.add_graph(nn.Linear(3, 2), torch.randn(1, 3))
    with pytest.raises(ValueError, match="add_scalar 'x': expected one number"):
        w.add_scalar("x", np.zeros(3))
    with pytest.raises(ValueError, match="does not match 'CHW'"):
        w.add_image("i", np.zeros((4, 4)))
    w.close()
    for sub, value in (("loss_train", 1.0), ("loss_val", 2.0)):
        ((_, v),) = values_of(events_of(str(tmp_path / sub)))
        assert v[1] == [b"loss"] and v[2] == [value]
    tags = [v[1][0].decode() for _, v in values_of(events_of(str(tmp_path / "hp")))]
    assert tags == ["_hparams_/experiment", "_hparams_/session_start_info", "_hparams_/session_end_info", "hparam/acc"]
    assert "matmul" in w.graphs[0][1]


def _train(writer, prof, steps: int = 4) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
    for step in range(steps):
        with record_function("forward"):
            loss = nn.functional.cross_entropy(model(x), y)
        with record_function("backward"):
            opt.zero_grad()
            loss.backward()
            opt.step()
        writer.add_scalar("Loss/train", loss.item(), step)
        prof.step()
    return model


def test_training_loop_with_writer_and_profiler(tmp_path):
    writer = SummaryWriter(str(tmp_path / "run"))
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        _train(writer, prof)
    writer.close()
    assert dispatch.op_observer is None  # the hook is off again
    losses = [v[2][0] for _, v in values_of(events_of(str(tmp_path / "run")))]
    assert len(losses) == 4 and losses[-1] < losses[0]

    avg = {e.key: e for e in prof.key_averages()}
    assert avg["forward"].count == 4 and avg["backward"].count == 4
    assert avg["graphnn::matmul"].count == 8  # two Linear layers, four steps
    for e in avg.values():
        assert 0 <= e.self_cpu_time_total <= e.cpu_time_total + 1e-9
    f = avg["forward"]
    own_ops = sum(e.cpu_time_total for k, e in avg.items() if k.startswith("graphnn::"))
    assert f.self_cpu_time_total < f.cpu_time_total and own_ops > 0

    table = prof.key_averages().table(sort_by="cpu_time_total", row_limit=3)
    lines = table.splitlines()
    heads = ["Name", "Self CPU %", "Self CPU", "CPU total %", "CPU total", "CPU time avg", "# of Calls"]
    assert [h.strip() for h in lines[1].split("  ") if h.strip()] == heads
    rows = [ln.split() for ln in lines[3:-2]]
    assert len(rows) == 3 and lines[-1].startswith("Self CPU time total: ")
    totals = [e.cpu_time_total for e in sorted(avg.values(), key=lambda e: -e.cpu_time_total)[:3]]
    assert [r[0] for r in rows] == [e.key for e in sorted(avg.values(), key=lambda e: -e.cpu_time_total)[:3]]
    assert totals == sorted(totals, reverse=True)
    assert rows[0][-1] == str(sorted(avg.values(), key=lambda e: -e.cpu_time_total)[0].count)
    shaped = prof.key_averages(group_by_input_shape=True).table(sort_by="count", row_limit=50)
    assert "Input Shapes" in shaped and "[[32, 8], [8, 16]]" in shaped
    with pytest.raises(ValueError, match="sort_by='bogus'"):
        prof.key_averages().table(sort_by="bogus")

    path = tmp_path / "trace.json"
    prof.export_chrome_trace(str(path))
    trace = json.loads(path.read_text())
    evs = trace["traceEvents"]
    assert {e["ph"] for e in evs} == {"X"}
    assert sum(e["name"] == "forward" for e in evs) == 4
    by_id = {e["args"]["External id"]: e for e in evs}
    for e in evs:  # a child lies within its parent
        p = by_id.get(e["args"].get("Parent id"))
        if p is not None:
            assert p["ts"] <= e["ts"] + 1e-3 and e["ts"] + e["dur"] <= p["ts"] + p["dur"] + 2e-3
    mm = next(e for e in evs if e["name"] == "graphnn::matmul")
    assert mm["cat"] == "cpu_op" and mm["args"]["Input Dims"] == [[32, 8], [8, 16]]


def test_schedule_and_trace_handler(tmp_path):
    sched = schedule(wait=1, warmup=1, active=2, repeat=1, skip_first=1)
    acts = [sched(i) for i in range(7)]
    N, W, R, S = ProfilerAction.NONE, ProfilerAction.WARMUP, ProfilerAction.RECORD, ProfilerAction.RECORD_AND_SAVE
    assert acts == [N, N, W, R, S, N, N]
    saved = []

    def ready(p):
        saved.append(sorted(e.key for e in p.key_averages() if e.key.startswith("ProfilerStep")))
        tensorboard_trace_handler(str(tmp_path), worker_name="w0")(p)

    with profile(schedule=schedule(wait=1, warmup=0, active=2), on_trace_ready=ready) as prof:
        for _ in range(6):
            with record_function("work"):
                torch.ones(2) + 1
            prof.step()
    # cycles of 3 steps: 1 and 2 recorded, 4 and 5 recorded
    assert saved == [["ProfilerStep#1", "ProfilerStep#2"], ["ProfilerStep#4", "ProfilerStep#5"]]
    files = sorted(glob.glob(str(tmp_path / "w0.*.pt.trace.json")))
    assert len(files) >= 1 and all(json.load(open(f))["traceEvents"] for f in files)


def test_record_function_decorator_and_autograd_profiler():
    import graphnn.autograd.profiler as ap

    @record_function("helper")
    def helper(n):
        return helper(n - 1) if n else torch.zeros(1)

    helper(2)  # no profiler: free
    with ap.profile() as prof:
        helper(2)
    avg = {e.key: e for e in prof.key_averages()}
    assert avg["helper"].count == 3
    assert avg["helper"].self_cpu_time_total <= avg["helper"].cpu_time_total
    assert "helper" in prof.table(sort_by="self_cpu_time_total")
    with ap.profile(enabled=False) as off:
        helper(1)
    assert off.events() == []


def test_tensorboard_reads_the_files(tmp_path):
    ea = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    with SummaryWriter(str(tmp_path)) as w:
        for i in range(3):
            w.add_scalar("loss", 1.0 / (i + 1), i)
        w.add_histogram("h", np.arange(10.0), 0)
        w.add_text("t", "hi", 0)
    acc = ea.EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
    acc.Reload()
    assert [(s.step, s.value) for s in acc.Scalars("loss")] == [(0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3))]
    assert acc.Histograms("h")[0].histogram_value.num == 10
