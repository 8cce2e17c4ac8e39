"""transformer18.distributed: two CPU processes under torchrun train what one process trains, rank 0's
checkpoint loads in one process, the command line refuses bad input, and the GPU switches (device choice,
NCCL, bfloat16) work without a GPU and leave the default CPU path alone."""

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist

from transformer18 import date_translator, distributed, notebook
from transformer18.date_translator import DateTranslator, train_date_translator
from transformer18.distributed import (
    BIGGER,
    bf16_supported,
    launch_command,
    launched_by_torchrun,
    main,
    parse_args,
    pick_backend,
    process_group,
    replica_difference,
    training_kwargs,
)

# A tiny model, a global batch of 8 (4 per process), warm-up over 5 steps to a high rate: 25 steps of Adam.
TINY = ["--device", "cpu", "--d-model", "16", "--n-heads", "2", "--n-layers", "1", "--d-ff", "32", "--batch-size", "8",
        "--steps", "25", "--warmup", "5", "--lr", "3e-3", "--eval-every", "25", "--eval-size", "20", "--no-target",
        "--threads", "1", "--no-progress", "--seed", "1"]
# Two processes add the two half-batches' gradients in another order than one process adds the whole batch's:
# the weights may differ by float32 rounding, carried through 25 Adam steps. Measured: about 1e-7.
WEIGHT_TOLERANCE = 1e-5
# The key biases w_k.bias are the exception: they add the same number to every score of a query's row, which
# softmax ignores, so their true gradient is 0 and Adam turns rounding noise into steps of size lr. They cannot
# change the output (test_the_key_biases_cannot_change_the_output), so they are compared through the outputs.
OUTPUT_TOLERANCE = 1e-4
TORCHRUN_ENV = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}


def torchrun(nproc: int, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", *launch_command(nproc, args=args)[1:]]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """A real 2-process run: torchrun, DistributedDataParallel, gloo. Returns (folder, stdout, report)."""
    work = tmp_path_factory.mktemp("ddp")
    done = torchrun(2, *TINY, "--checkpoint", str(work / "rank0.pt"), "--report", str(work / "report.json"))
    assert done.returncode == 0, done.stderr[-4000:]
    return work, done.stdout, json.loads((work / "report.json").read_text())


@pytest.fixture(scope="module")
def one_process():
    """The same configuration, global batch, seed and steps in this process, without torchrun."""
    return train_date_translator(**training_kwargs(parse_args(TINY)))


def logits(model: torch.nn.Module, translator: DateTranslator) -> torch.Tensor:
    data = date_translator.make_date_data(1)
    batch = next(date_translator.date_batches(data.valid, translator.src_vocab, translator.tgt_vocab, 50, seed=2))
    with torch.no_grad():
        return model.eval()(batch.src, batch.tgt_in, batch.src_mask, batch.tgt_mask)  # (50, tgt_len, tgt_vocab)


# ---------------------------------------------------------------- the 2-process run


def test_two_processes_train_the_same_weights_as_one(two_processes, one_process):
    work, _, report = two_processes
    assert (report["world_size"], report["backend"], report["batch_per_process"], report["steps"]) == (2, "gloo", 4, 25)
    assert report["replica_difference"] == 0.0, "the two replicas must end bit-for-bit equal"
    ours = DateTranslator.load(work / "rank0.pt").model.state_dict()
    reference = one_process.model.state_dict()
    assert ours.keys() == reference.keys()
    compared = [k for k in reference if not k.endswith("w_k.bias")]
    assert len(compared) == len(reference) - 3  # one key bias per attention: encoder self, decoder self and cross
    for name in compared:
        torch.testing.assert_close(ours[name], reference[name], atol=WEIGHT_TOLERANCE, rtol=0, msg=name)
    moved = max((ours[k] - reference[k]).abs().max().item() for k in compared)
    assert moved < WEIGHT_TOLERANCE


def test_two_processes_compute_the_same_outputs_as_one(two_processes, one_process):
    work, _, _ = two_processes
    rank0 = DateTranslator.load(work / "rank0.pt")
    torch.testing.assert_close(logits(rank0.model, rank0), logits(one_process.model, one_process),
                               atol=OUTPUT_TOLERANCE, rtol=OUTPUT_TOLERANCE)


def test_the_key_biases_cannot_change_the_output(two_processes):
    work, _, _ = two_processes
    translator = DateTranslator.load(work / "rank0.pt")
    before = logits(translator.model, translator)
    with torch.no_grad():
        for name, p in translator.model.named_parameters():
            if name.endswith("w_k.bias"):
                p.add_(torch.randn_like(p))
    torch.testing.assert_close(logits(translator.model, translator), before, atol=1e-5, rtol=1e-5)


def test_rank0_checkpoint_loads_in_one_process_and_translates(two_processes, one_process):
    work, _, _ = two_processes
    translator = DateTranslator.load(work / "rank0.pt")
    assert next(translator.model.parameters()).device.type == "cpu"
    texts = [text for text, _ in date_translator.make_date_data(1).valid.sample(40, seed=3)]
    outputs = translator.translate(texts)
    assert len(outputs) == 40 and all(set(o) <= set("0123456789-") and len(o) <= 11 for o in outputs)
    assert outputs == one_process.translate(texts)


def test_only_rank0_logs_and_writes(two_processes):
    work, stdout, report = two_processes
    assert stdout.count("[transformer18.distributed] 2 process(es), backend gloo, cpu") == 1
    assert stdout.count("saved ") == 1 and sorted(p.name for p in work.iterdir()) == ["rank0.pt", "report.json"]
    assert report["train_seconds"] > 0 and len(report["rank0_losses"]) == 25


def test_bad_input_stops_every_process_with_a_clear_message():
    done = torchrun(2, *TINY[:-2], "--batch-size", "7")
    assert done.returncode != 0
    assert "--batch-size 7 (the global batch) does not split over 2 processes" in done.stderr


@pytest.mark.parametrize("version, backend, hangs", [
    ("2.3.0+cu121", "gloo", True), ("2.3.1", "gloo", True), ("2.4.0", "gloo", False), ("2.11.0+cu130", "gloo", False),
    ("2.13.0", "gloo", False), ("2.3.0", "nccl", False),
])
def test_the_process_group_is_left_without_destroy_only_where_destroy_hangs(version, backend, hangs):
    assert distributed.teardown_hangs(version, backend) is hangs


def _can_rename_host() -> bool:
    """True where `unshare --uts` may give a child process its own host name (Linux, as root)."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return False
    try:
        return subprocess.run(["unshare", "--uts", "hostname", "t18-probe"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.skipif(not _can_rename_host(), reason="needs `unshare --uts` (Linux, root) to give torchrun a host name")
def test_two_processes_meet_when_the_host_name_does_not_resolve():
    """A CI machine's host name did not resolve, and torchrun --standalone without --local-addr waited until it
    was killed (torch 2.3 and 2.11). launch_command's loopback address does not depend on the name."""
    name = "t18-no-such-host"
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo(name, None)
    command = [sys.executable, "-m", "torch.distributed.run", *launch_command(2, args=TINY[:-2] + ["--seed", "1"])[1:]]
    done = subprocess.run(["unshare", "--uts", "sh", "-c", f'hostname {name} && exec "$@"', "sh", *command],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-4000:]
    assert "2 process(es), backend gloo" in done.stdout


# ---------------------------------------------------------------- the command line


def test_unset_options_take_train_date_translators_defaults():
    import inspect

    kwargs = training_kwargs(parse_args([]))
    signature = inspect.signature(train_date_translator).parameters
    assert set(kwargs) <= set(signature)
    assert {k: signature[k].default for k in kwargs} == kwargs
    assert kwargs["bf16"] is False and kwargs["device"] is None and kwargs["max_seconds"] is None


def test_the_bigger_preset_and_explicit_options():
    args = parse_args(["--bigger"])
    assert all(getattr(args, k) == v for k, v in BIGGER.items())
    assert (BIGGER["d_model"], BIGGER["n_heads"], BIGGER["n_layers"], BIGGER["d_ff"], BIGGER["batch_size"]) == (256, 8, 4, 1024, 256)
    assert parse_args(["--bigger", "--d-model", "128", "--lr", "1e-4"]).d_model == 128
    assert parse_args(["--bigger", "--d-model", "128", "--lr", "1e-4"]).n_layers == 4
    assert parse_args(["--no-target"]).target is None and parse_args(["--target", "0.9"]).target == 0.9
    assert parse_args(["--checkpoint", "a.pt"]).checkpoint.name == "a.pt"
    assert parse_args(["--local-rank=1"]).steps == 6000  # torch.distributed.launch passes it; it is ignored


@pytest.mark.parametrize("argv, message", [
    (["--steps", "0"], "argument --steps: must be positive, got 0"),
    (["--batch-size", "-8"], "argument --batch-size: must be positive"),
    (["--d-model", "sixty-four"], "argument --d-model: invalid int value: 'sixty-four'"),
    (["--lr", "0"], "argument --lr: must be positive"),
    (["--target", "1.5"], r"argument --target: must lie in \(0, 1\], got 1.5"),
    (["--d-model", "60", "--n-heads", "8"], "--d-model 60 is not divisible by --n-heads 8"),
    (["--seed", "-1"], "--seed must be ≥ 0"),
    (["--backend", "mpi"], "argument --backend: invalid choice: 'mpi'"),
    (["--stpes", "10"], "unrecognized arguments: --stpes 10"),
])
def test_bad_arguments_raise_a_value_error_naming_the_problem(argv, message):
    with pytest.raises(ValueError, match=message):
        parse_args(argv)


def test_under_torchrun_the_batch_must_split_and_there_is_no_clock_limit(monkeypatch):
    for name, value in TORCHRUN_ENV.items():
        monkeypatch.setenv(name, value)
    assert parse_args(["--batch-size", "8"]).batch_size == 8
    with pytest.raises(ValueError, match="does not split over 2 processes"):
        parse_args(["--batch-size", "9"])
    with pytest.raises(ValueError, match="--max-seconds lets each process stop by its own clock"):
        parse_args(["--max-seconds", "60"])
    monkeypatch.delenv("MASTER_PORT")  # not torchrun after all: one process, a clock limit is fine
    assert parse_args(["--max-seconds", "60", "--batch-size", "9"]).max_seconds == 60


def test_main_reports_bad_arguments_with_exit_status_2(capsys):
    assert main(["--steps", "zero"]) == 2
    assert "argument --steps: invalid int value: 'zero'" in capsys.readouterr().err


def test_without_torchrun_main_is_train_date_translator_in_one_process(tmp_path, capsys):
    argv = TINY[:TINY.index("--steps")] + ["--steps", "4"] + TINY[TINY.index("--steps") + 2:]
    assert main(argv + ["--checkpoint", str(tmp_path / "one.pt"), "--report", str(tmp_path / "one.json")]) == 0
    assert not dist.is_initialized()
    out = capsys.readouterr().out
    assert "1 process(es), backend none, cpu; global batch 8 = 1 × 8; float32" in out
    report = json.loads((tmp_path / "one.json").read_text())
    assert (report["world_size"], report["backend"], report["steps"], report["replica_difference"]) == (1, None, 4, 0.0)
    direct = train_date_translator(**training_kwargs(parse_args(argv))).model.state_dict()
    saved = DateTranslator.load(tmp_path / "one.pt").model.state_dict()
    assert all(torch.equal(saved[k], direct[k]) for k in direct), "the same process, seed and threads: bit-for-bit"


def test_launch_command_for_one_and_several_machines():
    assert launch_command(2) == ["torchrun", "--nproc_per_node=2", "--standalone", "--local-addr=127.0.0.1", "-m",
                                 "transformer18.distributed"]
    c10d = launch_command(8, nnodes=4, rdzv_endpoint="10.0.0.1:29400", args=["--bigger"])
    assert c10d == ["torchrun", "--nproc_per_node=8", "--nnodes=4", "--rdzv_backend=c10d",
                    "--rdzv_endpoint=10.0.0.1:29400", "--rdzv_id=dates", "-m", "transformer18.distributed", "--bigger"]
    static = launch_command(4, nnodes=2, rdzv_endpoint="node0:29500", node_rank=1)
    assert static[2:6] == ["--nnodes=2", "--node_rank=1", "--master_addr=node0", "--master_port=29500"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(nproc_per_node=0), "nproc_per_node must be a positive int"),
    (dict(nproc_per_node=2.0), "nproc_per_node must be a positive int"),
    (dict(nproc_per_node=2, nnodes=0), "nnodes must be a positive int"),
    (dict(nproc_per_node=2, rdzv_endpoint="host:1"), "one machine needs no rdzv_endpoint"),
    (dict(nproc_per_node=2, nnodes=2), "2 machines need rdzv_endpoint='host:port'"),
    (dict(nproc_per_node=2, nnodes=2, rdzv_endpoint="node0"), "need rdzv_endpoint='host:port'"),
    (dict(nproc_per_node=2, nnodes=2, rdzv_endpoint="node0:1", node_rank=2), r"node_rank must be an int in \[0, 2\)"),
])
def test_launch_command_refuses_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        launch_command(**kwargs)


# ---------------------------------------------------------------- process group and shutdown


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_launched_by_torchrun_needs_all_of_torchruns_variables(monkeypatch):
    assert launched_by_torchrun(TORCHRUN_ENV)
    assert not launched_by_torchrun({k: v for k, v in TORCHRUN_ENV.items() if k != "LOCAL_RANK"})
    for name in TORCHRUN_ENV:
        monkeypatch.delenv(name, raising=False)
    assert not launched_by_torchrun()


def test_outside_torchrun_process_group_is_one_process(monkeypatch):
    for name in TORCHRUN_ENV:
        monkeypatch.delenv(name, raising=False)
    with process_group() as (rank, world_size):
        assert (rank, world_size) == (0, 1) and not dist.is_initialized()


def test_process_group_joins_and_always_leaves(monkeypatch):
    env = {**TORCHRUN_ENV, "WORLD_SIZE": "1", "MASTER_PORT": str(free_port())}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with process_group("gloo") as (rank, world_size):
        assert (rank, world_size) == (0, 1) and dist.is_initialized() and dist.get_backend() == "gloo"
        assert replica_difference(torch.nn.Linear(3, 2)) == 0.0  # all-reduces in a group of one
    assert not dist.is_initialized()
    monkeypatch.setenv("MASTER_PORT", str(free_port()))
    with pytest.raises(RuntimeError, match="boom"):
        with process_group("gloo"):
            raise RuntimeError("boom")
    assert not dist.is_initialized(), "an error inside must still leave the process group"


# ---------------------------------------------------------------- GPU readiness, tested without a GPU


def test_the_backend_follows_the_device(monkeypatch):
    assert pick_backend("cpu") == "gloo" and pick_backend("cuda:3") == "nccl"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_backend() == "gloo"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_backend() == "nccl" and pick_backend("cpu") == "gloo"


def test_cuda_is_picked_when_present_and_local_rank_picks_the_gpu(monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert notebook.device() == torch.device("cpu") and date_translator.training_device(None) == torch.device("cpu")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert date_translator.training_device(None) == torch.device("cpu")  # torchrun without GPUs: the CPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert date_translator.training_device(None) == torch.device("cuda", 1)  # under torchrun: this process's GPU
    assert date_translator.training_device("cpu") == torch.device("cpu")  # an explicit device wins
    monkeypatch.delenv("LOCAL_RANK")
    assert notebook.device() == torch.device("cuda") and date_translator.training_device(None) == torch.device("cuda")


def test_bf16_is_native_on_cpus_and_on_ampere_gpus_only(monkeypatch):
    assert bf16_supported("cpu") and bf16_supported(torch.device("cpu"))
    asked = []

    def is_bf16_supported(including_emulation=True):
        asked.append(including_emulation)
        return including_emulation  # an old GPU (a T4): bfloat16 only by emulation

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    assert not bf16_supported("cuda:0") and asked == [False]
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert bf16_supported("cuda")


def test_bf16_trains_on_the_cpu_and_float32_stays_the_default():
    kwargs = training_kwargs(parse_args(TINY[:TINY.index("--steps")] + ["--steps", "3"] + TINY[TINY.index("--steps") + 2:]))
    plain = train_date_translator(**kwargs)
    mixed = train_date_translator(**{**kwargs, "bf16": True})
    assert kwargs["bf16"] is False and plain.run.history.steps == mixed.run.history.steps == 3
    assert all(p.dtype == torch.float32 for p in mixed.model.parameters()), "weights stay float32 under autocast"
    losses, mixed_losses = plain.run.history.losses, mixed.run.history.losses
    assert all(torch.isfinite(torch.tensor(mixed_losses)))
    assert losses != mixed_losses, "bf16=True must change the arithmetic"
    assert max(abs(a - b) for a, b in zip(losses, mixed_losses)) < 0.05, "…but only by bfloat16 rounding"


def test_main_falls_back_to_float32_without_native_bf16(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(distributed, "bf16_supported", lambda device: False)
    argv = TINY[:TINY.index("--steps")] + ["--steps", "2"] + TINY[TINY.index("--steps") + 2:]
    assert main(argv + ["--bf16", "--report", str(tmp_path / "r.json")]) == 0
    assert "cpu has no native bfloat16: training in float32" in capsys.readouterr().out
    assert json.loads((tmp_path / "r.json").read_text())["bf16"] is False
