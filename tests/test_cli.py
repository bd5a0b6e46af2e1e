"""The `graphnn` program refuses nonsense with one line on stderr (exit code 2) and never shows a traceback:
strict --input-shape parsing, unwritable outputs (written whole or not at all), --version, `graphnn bench`
arguments and help, and the options of every other subcommand. All fast: nothing here runs a benchmark."""

import importlib.metadata
import os
import stat
import subprocess
import sys

import pytest

import graphnn
from cli_run import run_cli
from graphnn.tools import bench, cli
from graphnn.viz import outfile
from graphnn.tools.load_model import ModelError, parse_shape

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NET = os.path.join(ROOT, "tools", "tutorial_net.py") + ":Net"
SHAPE = "1,1,32,32"
EXPECTED = "expected comma-separated sizes like 1,1,32,32"


def run(*args, module: str = "graphnn.tools.cli", timeout: float = 120):
    """`graphnn ARGS` in this process (cli_run.py), or `python -m MODULE ARGS` in a subprocess."""
    if module == "graphnn.tools.cli":
        return run_cli(*args, cwd=ROOT)
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=ROOT, timeout=timeout
    )


def one_line_error(proc, command: str, code: int = 2) -> str:
    """The single stderr line of a failed run, checked to be `graphnn COMMAND: error: ...` without a traceback."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"graphnn {command}: error: "), proc.stderr
    return lines[0]


def usage_error(proc, command: str) -> str:
    """argparse's refusal: exit code 2, usage, then one error line."""
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"graphnn {command}: error: argument "), proc.stderr
    return last


@pytest.fixture
def export_dir(tmp_path):
    """A directory that looks like an export (a manifest), enough for the checks made before reading it."""
    d = tmp_path / "exp"
    d.mkdir()
    (d / "manifest.json").write_text("{}")
    return str(d)


# -- --input-shape -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, shape",
    [
        ("1,1,32,32", (1, 1, 32, 32)),
        ("1, 1, 32, 32", (1, 1, 32, 32)),
        (" 32 ", (32,)),
        ("1x1x32x32", (1, 1, 32, 32)),
        ("(2, 3)", (2, 3)),
        ("[4,5]", (4, 5)),
        ("007", (7,)),
    ],
)
def test_shape_accepted(text, shape):
    assert parse_shape(text) == shape


@pytest.mark.parametrize(
    "text, problem",
    [
        ("1,x,32", "'x' is not a positive integer"),
        ("1 1 32 32", "'1 1 32 32' is not a positive integer"),
        ("1,,1,32,32", "size 2 of 5 is empty"),
        ("1,1,32,32,", "size 5 of 5 is empty"),
        (",1", "size 1 of 2 is empty"),
        ("", "no sizes"),
        ("  ", "no sizes"),
        ("()", "no sizes"),
        ("1.5,1,32,32", "'1.5' is not a positive integer"),
        ("0,1,32,32", "'0' is not a positive integer"),
        ("-1,1,32,32", "'-1' is not a positive integer"),
        ("1,+2", "'+2' is not a positive integer"),
        ("1e3", "'1e3' is not a positive integer"),
        ("1x,32", "'1x' is not a positive integer"),
        ("1x1,32", "'1x1' is not a positive integer"),
        ("(1,2]", "'(1' is not a positive integer"),
        ("\uff11,2", "'\uff11' is not a positive integer"),  # a full-width digit
    ],
)
def test_shape_refused(text, problem):
    with pytest.raises(ModelError) as e:
        parse_shape(text)
    assert str(e.value) == f"--input-shape {text!r}: {problem}; {EXPECTED}"


@pytest.mark.parametrize("command", ["viz", "summary", "export"])
@pytest.mark.parametrize(
    "text, problem",
    [
        ("1,x,32", "'x' is not a positive integer"),
        ("1 1 32 32", "'1 1 32 32' is not a positive integer"),
        ("1,,1,32,32", "size 2 of 5 is empty"),
        ("1,1,32,32,", "size 5 of 5 is empty"),
        ("", "no sizes"),
        ("-1,1,32,32", "'-1' is not a positive integer"),
    ],
)
def test_cli_refuses_malformed_shape(tmp_path, command, text, problem):
    out = ["-o", str(tmp_path / "out")] if command == "export" else []
    line = one_line_error(run(command, NET, f"--input-shape={text}", *out), command)
    assert line == f"graphnn {command}: error: --input-shape {text!r}: {problem}; {EXPECTED}"


def test_second_shape_is_checked_too():
    line = one_line_error(run("summary", NET, "--input-shape", SHAPE, "--input-shape", "2,0"), "summary")
    assert "'2,0': '0' is not a positive integer" in line


def test_shape_too_large_to_allocate():
    line = one_line_error(run("summary", NET, "--input-shape", "1,1,1000000,1000000"), "summary")
    assert "cannot make a random input of shape 1x1x1000000x1000000" in line
    line = one_line_error(run("summary", NET, "--input-shape", "100000000000000000000,1"), "summary")
    assert "cannot make a random input of shape" in line


def test_export_needs_an_input_shape(tmp_path):
    line = one_line_error(run("export", NET, "-o", str(tmp_path / "e")), "export")
    assert "--input-shape is required" in line
    assert not (tmp_path / "e").exists()


# -- outputs that cannot be written ----------------------------------------------------------------------------------
def _bad_outputs(tmp_path) -> list:
    """(path, OS reason) of outputs that cannot be written, made in tmp_path."""
    (tmp_path / "taken.txt").mkdir()  # a directory where the file should go
    (tmp_path / "plain").write_text("x")  # a file where a folder should be
    cases = [(tmp_path / "taken.txt", "Is a directory"), (tmp_path / "plain" / "x.txt", "Not a directory")]
    if os.path.isdir("/proc/self"):
        cases.append(("/proc/graphnn-test.txt", "No such file or directory"))  # a folder no file can be made in
    return [(str(p), reason) for p, reason in cases]


def test_viz_unwritable_output_is_one_line(tmp_path):
    for path, reason in _bad_outputs(tmp_path):
        line = one_line_error(run("viz", NET, "--input-shape", SHAPE, "-o", path), "viz")
        assert line == f"graphnn viz: error: cannot write {path}: {reason}"
    assert sorted(os.listdir(tmp_path)) == ["plain", "taken.txt"] and not os.listdir(tmp_path / "taken.txt")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_viz_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        line = one_line_error(run("viz", NET, "--input-shape", SHAPE, "-o", str(ro / "x.txt")), "viz")
    finally:
        ro.chmod(0o755)
    assert line == f"graphnn viz: error: cannot write {ro / 'x.txt'}: Permission denied"


def test_viz_replaces_a_file_whole(tmp_path):
    """A successful run replaces the file (keeping its permissions) and leaves no temporary file; missing
    folders are created."""
    target = tmp_path / "net.txt"
    target.write_text("old")
    target.chmod(0o640)
    proc = run("viz", NET, "--input-shape", SHAPE, "--stage", "optimized", "-o", str(target))
    assert proc.returncode == 0, proc.stderr
    assert target.read_text().startswith("# Net: optimized") and stat.S_IMODE(target.stat().st_mode) == 0o640
    assert os.listdir(tmp_path) == ["net.txt"]
    nested = tmp_path / "a" / "b" / "net.dot"
    assert run("viz", NET, "--input-shape", SHAPE, "-o", str(nested)).returncode == 0 and nested.is_file()


def test_viz_failing_write_keeps_the_old_file(tmp_path, monkeypatch, capsys):
    """A write that fails after the graph is traced (here: the rename) is one line, exit 2, and the target keeps
    its old content; the temporary file is gone."""
    target = tmp_path / "net.txt"
    target.write_text("old")
    replace = os.replace

    def no_space(src, dst):
        if dst != str(target):
            return replace(src, dst)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_space)
    assert cli.main(["viz", NET, "--input-shape", SHAPE, "-o", str(target)]) == 2
    assert capsys.readouterr().err == f"graphnn viz: error: cannot write {target}: No space left on device\n"
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["net.txt"]


def test_write_atomic(tmp_path):
    link, real = tmp_path / "link.txt", tmp_path / "real.txt"
    real.write_text("old")
    link.symlink_to(real)
    outfile.write_atomic(str(link), "new")  # through the link, which stays a link
    assert link.is_symlink() and real.read_text() == "new"
    fresh = tmp_path / "fresh.bin"
    outfile.write_atomic(str(fresh), b"\x00\x01")
    umask = os.umask(0)
    os.umask(umask)
    assert fresh.read_bytes() == b"\x00\x01" and stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask
    with pytest.raises(IsADirectoryError) as e:
        outfile.write_atomic(str(tmp_path), "x")
    assert outfile.describe(e.value) == f"cannot write {tmp_path}: Is a directory"
    with pytest.raises(FileNotFoundError) as e:
        outfile.check_writable(str(tmp_path / "no" / "x.txt"))
    assert e.value.filename == str(tmp_path / "no" / "x.txt")
    outfile.check_writable(str(tmp_path / "no" / "x.txt"), make_dirs=True)
    assert sorted(os.listdir(tmp_path)) == ["fresh.bin", "link.txt", "real.txt"]


# -- standard output -------------------------------------------------------------------------------------------------
@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize(
    "args, command",
    [(["summary", NET, "--input-shape", SHAPE], "summary"), (["--version"], ""), (["bench", "--help"], "bench")],
)
def test_full_stdout_is_one_line(args, command):
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "graphnn.tools.cli", *args],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
    prog = f"graphnn {command}".strip()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr == f"{prog}: error: cannot write to standard output: No space left on device\n"


def test_closed_pipe_is_quiet():
    proc = subprocess.Popen(
        [sys.executable, "-m", "graphnn.tools.cli", "summary", NET, "--input-shape", SHAPE],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    proc.stdout.close()  # the reader goes away before the table is printed
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1 and err == ""


def test_interrupt_is_one_line(tmp_path):
    model = tmp_path / "stop.py"
    model.write_text("def make():\n    raise KeyboardInterrupt\n")
    line = one_line_error(run("summary", f"{model}:make", "--input-shape", SHAPE), "summary", code=130)
    assert line == "graphnn summary: error: interrupted"


# -- --version -------------------------------------------------------------------------------------------------------
def test_version():
    proc = run("--version")
    assert proc.returncode == 0 and proc.stdout == f"graphnn {importlib.metadata.version('graphnn')}\n"
    assert proc.stderr == ""


def test_version_falls_back_to_the_package(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    assert cli.version() == graphnn.version.graphnn_version


# -- bench -----------------------------------------------------------------------------------------------------------
def _subparser(command: str):
    parser = cli.build_parser()
    choices = next(a for a in parser._actions if a.dest == "command").choices
    return choices[command]


@pytest.mark.parametrize("command", ["demo", "bench"])
def test_every_option_says_what_it_does_and_its_default(command):
    for action in _subparser(command)._actions:
        if action.dest != "help":
            assert action.help and "(default: " in action.help, action.option_strings
            if isinstance(action.default, int):
                assert f"(default: {action.default}" in action.help, action.option_strings


def test_bench_help_lists_workloads():
    proc = run("bench", "--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert all(name in text for name in bench.workload_names())
    assert "(default: 50)" in text and "(default: 1024)" in text and "(default: 16777216, chain_16M)" in text


def test_bench_workload_names():
    assert bench.workload_names() == [
        "lenet_infer_b1",
        "lenet_infer_b64",
        "lenet_train_b1",
        "lenet_train_b64",
        "mlp_train_b128",
        "gemm_1024",
        "chain_16M",
        "gpt_train",
        "gpt_generate",
        "lstm_train",
        "mlp_train_dynamic_b100",
        "lenet_infer_dynamic_b100",
        "compile",
    ]
    assert bench.workload_names(512, 1000)[-8:-4] == ["gemm_512", "chain_1000", "gpt_train", "gpt_generate"]


@pytest.mark.parametrize("module", ["graphnn.tools.cli", "graphnn.tools.bench"])
def test_bench_unknown_workload(module):
    args = ["bench"] if module.endswith("cli") else []
    proc = run(*args, "--only", "nonsense", "gemm_1024", module=module, timeout=60)
    line = one_line_error(proc, "bench")
    assert "unknown workload 'nonsense'" in line and "gemm_1024" in line.split("valid names:")[1]
    assert all(n in line for n in bench.workload_names()) and proc.stdout == ""


def test_bench_names_follow_the_sizes():
    line = one_line_error(run("bench", "--gemm", "512", "--only", "gemm_1024", timeout=60), "bench")
    assert "unknown workload 'gemm_1024'" in line and "gemm_512" in line


@pytest.mark.parametrize(
    "args, message",
    [
        (["--only"], "argument --only: expected at least one argument"),
        (["--reps", "0"], "argument --reps: must be 1 or more, got '0'"),
        (["--reps", "-3"], "argument --reps: must be 1 or more"),
        (["--gemm", "0"], "argument --gemm: must be 1 or more"),
        (["--chain", "lots"], "argument --chain: 'lots' is not an integer"),
        (["--threads", "3"], "argument --threads: invalid choice"),
        (["--peers", "tf"], "argument --peers: invalid choice"),
    ],
)
def test_bench_bad_options(args, message):
    assert message in usage_error(run("bench", *args, timeout=60), "bench")


def test_bench_unwritable_json_fails_before_running(tmp_path):
    path = str(tmp_path / "missing" / "r.json")
    line = one_line_error(run("bench", "--json", path, timeout=60), "bench")
    assert line == f"graphnn bench: error: --json: cannot write {path}: No such file or directory"


# -- the other subcommands' options ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, message",
    [
        (["--steps", "0"], "argument --steps: must be 1 or more"),
        (["--batch", "-1"], "argument --batch: must be 1 or more"),
        (["--batch", "two"], "argument --batch: 'two' is not an integer"),
        (["--lr", "0"], "argument --lr: must be a positive finite number"),
        (["--lr", "nan"], "argument --lr: must be a positive finite number"),
        (["--seed", "-1"], "argument --seed: must be 0 or more"),
    ],
)
def test_demo_bad_options(args, message):
    assert message in usage_error(run("demo", *args), "demo")


def test_viz_depth(tmp_path):
    assert "argument --depth: must be 0 or more" in usage_error(
        run("viz", NET, "--input-shape", SHAPE, "--depth", "-1"), "viz"
    )
    line = one_line_error(run("viz", NET, "--input-shape", SHAPE, "--depth", "1", "-o", str(tmp_path / "x.txt")), "viz")
    assert "--depth applies to pictures" in line
    assert "--depth applies to pictures" in one_line_error(
        run("viz", NET, "--input-shape", SHAPE, "--depth", "1"), "viz"
    )


def test_viz_export_dir_options(export_dir):
    line = one_line_error(run("viz", export_dir, "--input-shape", SHAPE), "viz")
    assert "--input-shape does not apply to an export directory" in line
    line = one_line_error(run("viz", export_dir, "--input-shape", "1,x"), "viz")
    assert "'x' is not a positive integer" in line
    assert "--train does not apply to an export directory" in one_line_error(run("viz", export_dir, "--train"), "viz")


@pytest.mark.parametrize("command", ["summary", "export"])
def test_export_dir_needs_source(tmp_path, export_dir, command):
    out = ["-o", str(tmp_path / "again")] if command == "export" else []
    line = one_line_error(run(command, export_dir, "--input-shape", SHAPE, *out), command)
    assert f"{export_dir} is an export directory: graphnn {command} needs the model's source" in line


def test_export_options(tmp_path):
    out = str(tmp_path / "e")
    line = one_line_error(run("export", NET, "--input-shape", SHAPE, "--lr", "0.1", "-o", out), "export")
    assert "--lr applies to --mode train_step only" in line
    for lr in ("0", "-1", "inf", "nan"):
        proc = run("export", NET, "--input-shape", SHAPE, "--mode", "train_step", "--lr", lr, "-o", out)
        assert "argument --lr: must be a positive finite number" in usage_error(proc, "export")
    assert not os.path.exists(out)


def test_no_command_prints_help():
    proc = run()
    assert proc.returncode == 2 and "{demo,viz,summary,export,bench}" in proc.stdout and "--version" in proc.stdout


def test_bench_states_the_machine_and_gemm_as_a_share_of_its_peak(monkeypatch, capsys, tmp_path):
    """The header names the CPU and its measured FMA peak; a workload with a flop count is also given as a share of
    that peak (a stand-in workload: the machine line is what is checked, not a timing)."""
    from graphnn.codegen.peak import fma_peak_gflops

    peak = fma_peak_gflops(seconds=0.02)
    assert peak > 1.0  # a real measurement: at least one vector FMA per nanosecond on any x86-64 core
    monkeypatch.setattr(bench, "workloads", lambda args, torch: [("gemm_1024", lambda: None, {}, 1e6, None)])
    monkeypatch.setattr(bench, "compile_times", lambda: {"compile_cold_s": 0.0, "compile_warm_s": 0.0})
    args = cli.build_parser().parse_args(
        ["bench", "--only", "gemm_1024", "--reps", "1", "--json", str(tmp_path / "b.json")]
    )
    assert bench.main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("CPU: ") and "measured fp32 FMA peak" in out and "GFLOP/s per core" in out
    assert "% of peak)" in out.splitlines()[1]


def test_export_keeps_a_users_files_unless_forced(tmp_path):
    model = tmp_path / "m.py"
    model.write_text(
        "import graphnn.nn as nn\n\nclass M(nn.Linear):\n    def __init__(self):\n        super().__init__(4, 2)\n"
    )
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text("my notes")
    line = one_line_error(run("export", f"{model}:M", "--input-shape", "2,4", "-o", str(out)), "export")
    assert "already holds manifest.json" in line and "--force" in line
    assert (out / "manifest.json").read_text() == "my notes"
    assert run("export", f"{model}:M", "--input-shape", "2,4", "-o", str(out), "--force").returncode == 0
    line = one_line_error(run("export", f"{model}:M", "--input-shape", "2,4", "-o", str(model)), "export")
    assert "is a file, not a directory" in line and "does not fit" not in line
