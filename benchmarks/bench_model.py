"""Training speed of the ConvLSTM forecaster against OpenSTL's own ConvLSTM: samples/s, model TFLOP/s, share of
the device's dense bf16 matmul rate and peak memory, per grid, batch size and variant; then a profile of the fastest.

Usage (benchmarks/README.md has the GPU command and how to get the peer's source)::

    python benchmarks/bench_model.py --device cuda --peer-src ~/src/OpenSTL --out results/bench_model.md
    python benchmarks/bench_model.py --device cpu --quick [--peer-src /tmp/openstl]

Configs: ``weatherbench`` is the WeatherBench 5.625° grid (32×64, Rasp et al. 2020, https://arxiv.org/abs/2002.00469)
with 3 channels, 12 input → 12 output steps, 4 layers × 128 hidden, 5×5 kernels, patch size 2 (the sizes of OpenSTL's
configs/weather/*_5_625/ConvLSTM.py); ``large`` is the same network on a 64×128 grid. On CUDA each variant's batch
starts at 4 and doubles until it runs out of memory (or reaches ``--max-batch``).

Variants: ``openstl`` is OpenSTL's ``ConvLSTM_Model`` run from its own files (``--peer-src``, the root of an OpenSTL
checkout; Apache-2.0, https://github.com/chengtan9907/OpenSTL), never a re-implementation, fp32 eager, trained as its
``PredRNN.training_step`` does. The others are ours (``build_network("convlstm", ...)``): ``fp32`` eager; ``bf16``
under autocast; ``bf16_channels_last``; ``bf16_compiled_cell`` (``net.compile_cells()``); ``bf16_graphs``
(``torch.compile(mode="reduce-overhead")``: CUDA graphs); ``bf16_fused_adamw`` (compiled cells + ``AdamW(fused=True)``).
Every variant: AdamW, MSE against a random target, warm-up steps untimed, the median of the timed steps reported.

FLOPs are counted once per config and network with ``torch.utils.flop_counter.FlopCounterMode`` over one forward +
backward of one sample on the meta device (no memory, no time; every convolution's count is proportional to the
batch): the convolutions each network actually runs, 2 FLOPs per multiply-add. On CPU the full sizes take minutes
per step, so ``--quick`` (shrunk grids, 16 hidden channels, 4 → 4 steps) is the default there unless ``--full`` is
given; that is what ``make bench`` runs.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import importlib.util
import json
import math
import statistics
import sys
import time
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch._dynamo.utils import counters
from torch.autograd import DeviceType
from torch.utils.flop_counter import FlopCounterMode

from forecast.models import build_network

Step = Callable[[], None]


@dataclass(frozen=True)
class Config:
    """One benchmark problem: grid, channels, window lengths and network size."""

    name: str
    height: int
    width: int
    channels: int
    input_steps: int
    output_steps: int
    hidden: tuple[int, ...]
    kernel_size: int
    patch_size: int

    def shrunk(self) -> Config:
        """The ``--quick`` version: same depth, kernel and patching (so the same code paths), a sliver of the work."""
        return replace(self, name=f"{self.name}-quick", height=self.height // 2, width=self.width // 2,
                       input_steps=4, output_steps=4, hidden=(16,) * len(self.hidden))

    @property
    def label(self) -> str:
        return f"{self.name} {self.height}×{self.width}"


CONFIGS = {
    "weatherbench": Config("weatherbench", 32, 64, 3, 12, 12, (128,) * 4, 5, 2),
    "large": Config("large", 64, 128, 3, 12, 12, (128,) * 4, 5, 2),
}
# Table order. What each one is, as printed under the tables.
VARIANTS = {
    "openstl": "OpenSTL's ConvLSTM_Model from its own files (--peer-src), fp32 eager",
    "fp32": "ours, fp32 eager",
    "bf16": "ours, autocast bf16, eager",
    "bf16_channels_last": "ours, bf16, weights and per-frame inputs in channels_last",
    "bf16_compiled_cell": "ours, bf16, net.compile_cells(dynamic=True): inductor on each cell's step functions",
    "bf16_graphs": "ours, bf16, CUDA graphs: compile_cells(mode='reduce-overhead'), else torch.compile of the net",
    "bf16_fused_adamw": "ours, bf16, compiled cells as bf16_compiled_cell, AdamW(fused=True)",
}
# Run order: the CUDA-graph variant last, since torch._dynamo.reset() (which frees its graphs' memory pools) also
# drops the compiled cells that bf16_fused_adamw reuses from bf16_compiled_cell.
RUN_ORDER = ("openstl", "fp32", "bf16", "bf16_channels_last", "bf16_compiled_cell", "bf16_fused_adamw", "bf16_graphs")
# CUDA graphs need CUDA. Fused AdamW has a CPU kernel (torch >= 2.4), so it runs everywhere.
CUDA_ONLY = frozenset({"bf16_graphs"})
COMPILED = frozenset({"bf16_compiled_cell", "bf16_graphs", "bf16_fused_adamw"})
LEARNING_RATE = 1e-4


# --- the peer: OpenSTL's own ConvLSTM, loaded from its files ----------------------------------------------------------
PEER_FILES = {
    "cell": "openstl/modules/convlstm_modules.py",  # ConvLSTMCell
    "model": "openstl/models/convlstm_model.py",  # ConvLSTM_Model
    "utils": "openstl/utils/predrnn_utils.py",  # reshape_patch, used by its training_step before the model
}


@dataclass(frozen=True)
class Peer:
    """OpenSTL's ConvLSTM as its own code defines it: the model class and the patching its training step applies."""

    model_class: type[nn.Module]
    reshape_patch: Callable[[Tensor, int], Tensor]
    description: str


def _load_file(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def _modules_in_place(stand_ins: dict[str, types.ModuleType]) -> Iterator[None]:
    """Put ``stand_ins`` into ``sys.modules`` for the duration, then restore what was there (an installed openstl)."""
    saved = {name: sys.modules.get(name) for name in stand_ins}
    sys.modules.update(stand_ins)
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def load_peer(root: Path) -> Peer:
    """OpenSTL's ConvLSTM from the checkout at ``root``, by file path, without importing its package.

    ``convlstm_model.py`` does ``from openstl.modules import ConvLSTMCell``, and the real ``openstl/modules/
    __init__.py`` imports every model's modules (and their dependencies: timm, ...). A stand-in ``openstl.modules``
    holding just the cell from ``convlstm_modules.py`` satisfies that import, for the load only.
    """
    paths = {key: root / relative for key, relative in PEER_FILES.items()}
    missing = [str(path) for path in paths.values() if not path.is_file()]
    if missing:
        raise SystemExit(f"--peer-src {root} is not an OpenSTL checkout: missing {', '.join(missing)}")
    cell = _load_file("_peer_openstl_convlstm_modules", paths["cell"])
    package = types.ModuleType("openstl")
    package.__path__ = []  # a package, so "openstl.modules" resolves as its submodule
    modules = types.ModuleType("openstl.modules")
    modules.ConvLSTMCell = cell.ConvLSTMCell  # type: ignore[attr-defined]
    with _modules_in_place({"openstl": package, "openstl.modules": modules}):
        model = _load_file("_peer_openstl_convlstm_model", paths["model"])
    utils = _load_file("_peer_openstl_predrnn_utils", paths["utils"])  # imports math, numpy and torch only
    # Hashes of the files run, so a figure can be traced to the exact peer code.
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in paths.values())).hexdigest()[:12]
    return Peer(model.ConvLSTM_Model, utils.reshape_patch,
                f"{root} ({', '.join(PEER_FILES.values())}; sha256 {digest})")


def peer_configs(config: Config) -> types.SimpleNamespace:
    """The ``configs`` (its hparams) ConvLSTM_Model reads, set as OpenSTL's weather configs set them
    (configs/weather/t2m_5_625/ConvLSTM.py: num_hidden '128,128,128,128', filter_size 5, stride 1, patch_size 2,
    layer_norm 0), with scheduled sampling in its free-running state (reverse_scheduled_sampling 0)."""
    return types.SimpleNamespace(
        in_shape=(config.input_steps, config.channels, config.height, config.width),
        pre_seq_length=config.input_steps,
        aft_seq_length=config.output_steps,
        total_length=config.input_steps + config.output_steps,
        num_hidden=",".join(map(str, config.hidden)),
        filter_size=config.kernel_size,
        stride=1,
        patch_size=config.patch_size,
        layer_norm=0,
        reverse_scheduled_sampling=0,
    )


def build_peer(peer: Peer, config: Config) -> nn.Module:
    """ConvLSTM_Model built as OpenSTL's ``ConvLSTM._build_model`` does, on the current default device."""
    configs = peer_configs(config)
    num_hidden = [int(n) for n in configs.num_hidden.split(",")]
    return peer.model_class(len(num_hidden), num_hidden, configs)


def peer_loss(peer: Peer, net: nn.Module, config: Config, x: Tensor, y: Tensor, mask: Tensor) -> Tensor:
    """The loss of OpenSTL's ``PredRNN.training_step`` (which ConvLSTM inherits): the window patched by its own
    ``reshape_patch`` into ``[B, T, H/p, W/p, p²C]``, the model returning its MSE over frames 2..T."""
    frames = torch.cat([x, y], dim=1).permute(0, 1, 3, 4, 2).contiguous()  # [B, T_in+T_out, H, W, C]
    _, loss = net(peer.reshape_patch(frames, config.patch_size), mask)
    return loss


def peer_mask(config: Config, batch: int, device: torch.device | str) -> Tensor:
    """Its scheduled-sampling mask ``[B, T_out-1, H/p, W/p, p²C]``, all zeros: every lead fed its own prediction (what
    ``schedule_sampling`` returns after ``sampling_stop_iter``). Made once, on the device: OpenSTL rebuilds it with
    numpy every step, a host cost left out here, in the peer's favour."""
    p = config.patch_size
    shape = (batch, config.output_steps - 1, config.height // p, config.width // p, p * p * config.channels)
    return torch.zeros(shape, device=device)


# --- ours -------------------------------------------------------------------------------------------------------------
def build_ours(config: Config) -> nn.Module:
    """Our ConvLSTM as the pipeline builds it (base "last": no Context needed), on the current default device."""
    return build_network("convlstm", channels=config.channels, height=config.height, width=config.width,
                         hidden=config.hidden, kernel_size=config.kernel_size, patch_size=config.patch_size,
                         input_steps=config.input_steps, output_steps=config.output_steps)


def per_frame_channels_last(frames: Tensor) -> Tensor:
    """``[B, T, C, H, W]`` with each frame in channels_last: C innermost. (``channels_last_3d`` would treat T as the
    channels.) ``flatten(0, 1)`` of the result, as the model's input projection does, is a channels_last 4-D view."""
    return frames.flatten(0, 1).contiguous(memory_format=torch.channels_last).unflatten(0, frames.shape[:2])


# --- work count and machine ceiling -----------------------------------------------------------------------------------
def training_flops(network: str, config: Config, batch: int, peer: Peer | None) -> int:
    """FLOPs of one training step's forward + backward (the optimizer adds no convolutions), counted by
    FlopCounterMode on the meta device: exact for the convolutions each network runs, at no memory or time cost."""
    with torch.device("meta"):
        x = torch.randn(batch, config.input_steps, config.channels, config.height, config.width)
        y = torch.randn(batch, config.output_steps, config.channels, config.height, config.width)
        with FlopCounterMode(display=False) as counter:
            if network == "openstl":
                assert peer is not None
                loss = peer_loss(peer, build_peer(peer, config), config, x, y, peer_mask(config, batch, "meta"))
            else:
                loss = F.mse_loss(build_ours(config)(x, config.output_steps), y)
            loss.backward()
    return counter.get_total_flops()


MATMUL_N = 8192  # on CUDA: 1.1 TFLOP per product, ~1.4 ms at the H200's ~790 TFLOP/s in bf16


def matmul_tflops(device: torch.device, dtype: torch.dtype, trials: int = 5) -> float:
    """Dense matmul rate (TFLOP/s) of this device for ``dtype``: a large square product after warm-up, the median
    of ``trials`` timings of ``reps`` products. The practical ceiling the model's rate is compared with."""
    # 512 on CPU: CPUs without bf16 units run a bf16 matmul at ~1 GFLOP/s, and 1024³ would take most of a minute.
    n, reps = (MATMUL_N, 10) if device.type == "cuda" else (512, 2)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):  # cuBLAS heuristics, clocks up
        torch.matmul(a, b)
    seconds = []
    for _ in range(trials):
        seconds.append(elapsed(device, lambda: [torch.matmul(a, b) for _ in range(reps)]))
    return 2 * n**3 * reps / statistics.median(seconds) / 1e12


def elapsed(device: torch.device, work: Callable[[], object]) -> float:
    """Seconds ``work`` takes: CUDA events around it on CUDA (GPU time, launch gaps included), else wall clock."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        work()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    begin = time.perf_counter()
    work()
    return time.perf_counter() - begin


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- peak memory ------------------------------------------------------------------------------------------------------
def _proc_status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


class PeakMemory:
    """Peak memory of a row. CUDA: ``max_memory_allocated`` (tensors: weights, optimizer state, activations),
    reset after warm-up. CPU: the rise of the resident set's high-water mark (VmHWM, reset through
    /proc/self/clear_refs) over the resident set before the row's network was built; NaN where Linux refuses."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.base_kib = 0

    def start(self) -> None:
        if self.device.type == "cpu":
            with contextlib.suppress(OSError, KeyError):
                self.base_kib = _proc_status_kib("VmRSS")

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        try:
            Path("/proc/self/clear_refs").write_text("5")  # 5: reset the peak RSS to the current RSS (Linux >= 4.0)
        except OSError:
            self.base_kib = -1

    def peak_gib(self) -> float:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**30
        try:
            return math.nan if self.base_kib < 0 else (_proc_status_kib("VmHWM") - self.base_kib) / 2**20
        except (OSError, KeyError):
            return math.nan


# --- one variant's training step --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    device: torch.device
    warmup: int
    iters: int
    graphs_scope: str  # "cells" or "model": what bf16_graphs compiles with mode="reduce-overhead"


def build_step(variant: str, config: Config, batch: int, settings: Settings, peer: Peer | None) -> tuple[Step, str]:
    """A variant's training step (forward, MSE against a random target, backward, AdamW step) on fresh weights and
    inputs, and a note on how it ran. The step closes over the network, optimizer and tensors: dropping it frees them.
    """
    device = settings.device
    torch.manual_seed(0)
    x = torch.randn(batch, config.input_steps, config.channels, config.height, config.width, device=device)
    y = torch.randn(batch, config.output_steps, config.channels, config.height, config.width, device=device)
    if variant == "openstl":
        assert peer is not None
        with torch.device(device):
            net = build_peer(peer, config)
        mask = peer_mask(config, batch, device)
        optimizer = torch.optim.AdamW(net.parameters(), lr=LEARNING_RATE)

        def peer_step() -> None:
            loss = peer_loss(peer, net, config, x, y, mask)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        return peer_step, ""

    with torch.device(device):
        net = build_ours(config)
    note = ""
    model: nn.Module | Callable[..., Tensor] = net
    if variant == "bf16_channels_last":
        net = net.to(memory_format=torch.channels_last)  # the 4-D conv weights; 1-D biases stay as they are
        x, y = per_frame_channels_last(x), per_frame_channels_last(y)
    if variant in ("bf16_compiled_cell", "bf16_fused_adamw"):
        # dynamic=True: the batch doubles from row to row; symbolic shapes from the start spare one recompile of
        # every cell graph per config (the project's training, at one batch size, compiles once either way).
        net.compile_cells(dynamic=True)
    if variant == "bf16_graphs":
        if settings.graphs_scope == "cells":
            net.compile_cells(mode="reduce-overhead", dynamic=True)
            note = "CUDA graphs per cell call: compile_cells(mode='reduce-overhead', dynamic=True)"
        else:  # the whole forward (its time loop unrolled) and its backward, each one graph
            # Not dynamic=True: inductor then fails on the symbolic pad-to-a-multiple-of-p (InductorError, torch
            # 2.13); the default marks only the batch dynamic, at the second batch size.
            model = torch.compile(net, mode="reduce-overhead")
            note = "CUDA graphs of the whole forward and backward: torch.compile(net, mode='reduce-overhead')"
    fused = variant == "bf16_fused_adamw"
    optimizer = torch.optim.AdamW(net.parameters(), lr=LEARNING_RATE, fused=fused or None)
    bf16 = variant.startswith("bf16")
    graphs = variant == "bf16_graphs"

    def ours_step() -> None:
        if graphs:  # a new iteration: outputs of the previous replay may be overwritten
            torch.compiler.cudagraph_mark_step_begin()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.mse_loss(model(x, config.output_steps), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return ours_step, note


# --- rows -------------------------------------------------------------------------------------------------------------
@dataclass
class Row:
    """One config × batch × variant measurement (or why there is none: "OOM", "error: ...")."""

    config: str
    batch: int
    variant: str
    status: str = "ok"
    samples_per_s: float = math.nan
    tflops: float = math.nan
    matmul_share: float = math.nan
    peak_gib: float = math.nan
    step_ms: list[float] = field(default_factory=list)
    flops_per_step: int = 0
    note: str = ""


def measure(variant: str, config: Config, batch: int, settings: Settings, peer: Peer | None, flops: int,
            reference_tflops: float) -> Row:
    """Build the variant, run its warm-up steps, then time ``iters`` steps; raises OutOfMemoryError."""
    memory = PeakMemory(settings.device)
    memory.start()
    step, note = build_step(variant, config, batch, settings, peer)
    # CUDA graphs: the first calls run eagerly and record; replays start after that.
    for _ in range(settings.warmup + (2 if variant == "bf16_graphs" else 0)):
        step()
    synchronize(settings.device)
    memory.reset()
    # One iteration at a time (each one synchronised), so one measurement never overlaps the next.
    seconds = [elapsed(settings.device, step) for _ in range(settings.iters)]
    median = statistics.median(seconds)
    tflops = flops / median / 1e12
    return Row(config.name, batch, variant, samples_per_s=batch / median, tflops=tflops,
               matmul_share=tflops / reference_tflops, peak_gib=memory.peak_gib(),
               step_ms=[round(1e3 * s, 3) for s in seconds], flops_per_step=flops, note=note)


def release(device: torch.device, compiled_state: bool = False) -> None:
    """Free what the last row left: unreachable tensors, the allocator's cache and, with ``compiled_state``,
    dynamo's compiled code and the CUDA-graph trees with their private memory pools."""
    if compiled_state:
        torch._dynamo.reset()
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def run_row(variant: str, config: Config, batch: int, settings: Settings, peer: Peer | None, flops: int,
            reference_tflops: float) -> Row:
    """``measure`` with out-of-memory and other failures turned into rows, and the memory freed either way."""
    try:
        row = measure(variant, config, batch, settings, peer, flops, reference_tflops)
    except torch.cuda.OutOfMemoryError:
        status = "OOM"
    except Exception as exc:  # a variant that does not run is a result too; the other rows go on
        text = f"{type(exc).__name__}: {exc}"
        # cuDNN, cuBLAS and inductor report some allocation failures as plain RuntimeErrors.
        out_of_memory = "out of memory" in text.lower() or "ALLOC_FAILED" in text
        status = "OOM" if out_of_memory else "error: " + (text.splitlines() or [""])[0][:200]
    else:
        # Compiled code and recorded CUDA graphs stay for the next batch: dynamic shapes reuse the one and the
        # graph trees' shared memory pool serves every batch's recordings (dropping them would mean recompiling).
        release(settings.device)
        return row
    # Out of the except block, the traceback (whose frames held the failed step's tensors) is gone. A compiled step
    # that failed may have left half-recorded graphs: drop all compiled state.
    release(settings.device, compiled_state=variant in COMPILED)
    return Row(config.name, batch, variant, status=status, flops_per_step=flops)


def batch_sizes(args: argparse.Namespace, device: torch.device) -> list[int]:
    """Explicit ``--batches``, else 4, 8, 16, ... up to ``--max-batch`` (each variant stops at its first OOM)."""
    if args.batches:
        return [int(b) for b in args.batches.split(",")]
    if device.type != "cuda":
        return [2] if args.quick else [4]
    top = args.max_batch or (8 if args.quick else 4096)
    return [4 * 2**k for k in range(int(math.log2(top / 4)) + 1)] if top >= 4 else [top]


# --- profile of the fastest variant -----------------------------------------------------------------------------------
# CPU-side CUDA API calls that start GPU work (prefixes: cudaLaunchKernelExC, cuLaunchKernelEx, cudaGraphLaunch_v10000)
LAUNCH_CALLS = ("cudaLaunchKernel", "cuLaunchKernel", "cudaGraphLaunch", "cudaLaunchCooperativeKernel")
# Device-side events that are not kernels: copies, fills and the synchronisation records CUPTI may add.
NOT_KERNELS = ("Memcpy", "Memset", "Event Sync", "Stream Sync", "Context Sync", "Device Sync", "Stream Wait")


def profile(variant: str, config: Config, batch: int, settings: Settings, peer: Peer | None, steps: int) -> str:
    """Top kernels by self device time and kernel launches per training step, from torch.profiler over ``steps``
    steps after warm-up (CPU: top operators by self CPU time)."""
    device = settings.device
    step, _ = build_step(variant, config, batch, settings, peer)
    for _ in range(settings.warmup + (2 if variant == "bf16_graphs" else 0)):
        step()
    synchronize(device)
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        for _ in range(steps):
            step()
        synchronize(device)
    head = f"### Profile: {variant}, {config.label}, batch {batch} ({steps} steps profiled after warm-up)\n\n"
    if device.type != "cuda":
        table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)
        ops = sum(1 for event in prof.events() if event.device_type == DeviceType.CPU)
        return head + f"Operators per step (CPU, no kernels): {ops / steps:.0f}\n\n```\n{table}\n```\n"
    return head + kernel_report(prof, steps)


def kernel_report(prof: torch.profiler.profile, steps: int) -> str:
    """The profile's GPU work per step: top 15 kernels by total time (a Markdown table), kernels run, and the
    CPU-side launch calls (one cudaGraphLaunch runs a whole graph of kernels, so both counts matter)."""
    kernels: dict[str, list[float]] = {}
    copies = 0
    launches: dict[str, int] = {}
    for event in prof.events():
        if event.device_type == DeviceType.CUDA:
            if event.name.startswith(NOT_KERNELS):
                copies += 1
            else:
                kernels.setdefault(event.name, []).append(event.time_range.elapsed_us())
        elif event.name.startswith(LAUNCH_CALLS):
            launches[event.name] = launches.get(event.name, 0) + 1
    total_us = sum(sum(times) for times in kernels.values()) or math.nan
    lines = ["| kernel | calls/step | µs/step | % of kernel time |", "| --- | ---: | ---: | ---: |"]
    for name, times in sorted(kernels.items(), key=lambda item: -sum(item[1]))[:15]:
        short = name if len(name) <= 100 else name[:97] + "..."
        lines.append(f"| `{short}` | {len(times) / steps:.0f} | {sum(times) / steps:.0f} | "
                     f"{100 * sum(times) / total_us:.1f} |")
    run = sum(len(times) for times in kernels.values())
    launch_text = ", ".join(f"{name} {count / steps:.0f}" for name, count in sorted(launches.items())) or "none seen"
    return ("\n".join(lines) + f"\n\nKernels run per training step: {run / steps:.0f} (plus {copies / steps:.0f} "
            f"memcpy/memset); kernel time per step {total_us / steps / 1e3:.1f} ms.\n"
            f"CPU-side launch calls per step: {launch_text}.\n")


# --- report -----------------------------------------------------------------------------------------------------------
def _speedup(row: Row, by_key: dict[tuple[str, int, str], Row]) -> str:
    """Speed-up over openstl at the same config and batch, else over fp32 (the peer absent or out of memory)."""
    for baseline in ("openstl", "fp32"):
        base = by_key.get((row.config, row.batch, baseline))
        if base is not None and base.status == "ok":
            return f"{row.samples_per_s / base.samples_per_s:.2f}× {baseline}"
    return "—"


def render(header: list[str], rows: list[Row], configs: Sequence[Config], notes: list[str], profile_text: str) -> str:
    by_key = {(row.config, row.batch, row.variant): row for row in rows}
    order = {name: i for i, name in enumerate(VARIANTS)}
    out = ["# bench_model: ConvLSTM training step", "", *header, ""]
    out += ["| config | batch | variant | samples/s | TFLOP/s | % of bf16 matmul | peak GiB | speed-up |",
            "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    position = {config.name: i for i, config in enumerate(configs)}
    for row in sorted(rows, key=lambda r: (position.get(r.config, 0), r.batch, order[r.variant])):
        label = next((c.label for c in configs if c.name == row.config), row.config)
        if row.status != "ok":
            out.append(f"| {label} | {row.batch} | {row.variant} | {row.status} | | | | |")
            continue
        out.append(f"| {label} | {row.batch} | {row.variant} | {row.samples_per_s:.1f} | {row.tflops:.2f} | "
                   f"{100 * row.matmul_share:.1f} | {row.peak_gib:.2f} | {_speedup(row, by_key)} |")
    out += ["", "Best batch per variant:", "",
            "| config | variant | batch | samples/s | TFLOP/s | % of bf16 matmul | peak GiB | largest batch run |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for config in configs:
        for variant in VARIANTS:
            done = [r for r in rows if r.config == config.name and r.variant == variant and r.status == "ok"]
            if done:
                best = max(done, key=lambda r: r.samples_per_s)
                out.append(f"| {config.label} | {variant} | {best.batch} | {best.samples_per_s:.1f} | "
                           f"{best.tflops:.2f} | {100 * best.matmul_share:.1f} | {best.peak_gib:.2f} | "
                           f"{max(r.batch for r in done)} |")
    out += ["", "Variants:", *(f"- `{name}`: {text}" for name, text in VARIANTS.items()), ""]
    if notes:
        out += ["Notes:", *(f"- {note}" for note in notes), ""]
    if profile_text:
        out += [profile_text]
    return "\n".join(out) + "\n"


def write_report(path: Path | None, text: str, rows: list[Row]) -> None:
    """The Markdown report to ``path`` and every row (with each timed step) as JSON beside it; rewritten after every
    row, so a run stopped by a time limit still leaves what it measured."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.with_suffix(".json").write_text(json.dumps([asdict(row) for row in rows], indent=1))


# --- driver -----------------------------------------------------------------------------------------------------------
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated: " + ", ".join(CONFIGS))
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of the variants")
    parser.add_argument("--peer-src", type=Path, help="root of an OpenSTL checkout (outside this project)")
    parser.add_argument("--quick", action="store_true", help="shrunk sizes, few steps: a smoke test (CPU default)")
    parser.add_argument("--full", action="store_true", help="full sizes on CPU too (minutes per step)")
    parser.add_argument("--batches", help="comma-separated batch sizes instead of doubling from 4 until OOM")
    parser.add_argument("--max-batch", type=int, help="stop doubling here (CUDA; default 4096, 8 with --quick)")
    parser.add_argument("--iters", type=int, help="timed steps, the median reported (default 5, 2 with --quick)")
    parser.add_argument("--warmup", type=int, help="untimed steps first (default 2, 1 with --quick; +2 for graphs)")
    parser.add_argument("--graphs-scope", choices=("cells", "model"), default="cells",
                        help="bf16_graphs: CUDA-graph each cell's steps (default; falls back to model on error) or "
                             "the whole model's forward and backward")
    parser.add_argument("--profile-steps", type=int, help="steps profiled (default 3, 1 with --quick)")
    parser.add_argument("--no-profile", action="store_true", help="skip the profile of the fastest variant")
    parser.add_argument("--cudnn-benchmark", action="store_true", help="let cuDNN time its algorithms per shape")
    parser.add_argument("--time-limit", type=float, help="seconds: start no new row after this (rows left are noted)")
    parser.add_argument("--out", type=Path, help="write the report (Markdown) here too, and its rows as .json beside")
    args = parser.parse_args()
    if args.device.startswith("cpu") and not args.full:
        args.quick = True  # full sizes on CPU take minutes per step
    return args


def main() -> None:  # noqa: PLR0912, PLR0915 (one linear driver reads best as one function)
    args = parse_args()
    started = time.perf_counter()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = args.cudnn_benchmark
    # Several compiled variants and grids share each cell's code objects: the default limit of 8 graphs per code
    # object would silently drop later ones back to eager.
    torch._dynamo.config.recompile_limit = 256
    # Without duck shaping a batch size that happens to equal a grid or channel size (16, 32, 128 here) is not taken
    # for the same symbol, which would cost a recompile of every cell graph at that batch.
    with contextlib.suppress(ImportError, AttributeError):
        from torch.fx.experimental import _config as fx_config

        fx_config.use_duck_shape = False
    configs = [CONFIGS[name].shrunk() if args.quick else CONFIGS[name] for name in args.configs.split(",")]
    variants = [v for v in RUN_ORDER if v in args.variants.split(",")]
    settings = Settings(device, args.warmup if args.warmup is not None else (1 if args.quick else 2),
                        args.iters or (2 if args.quick else 5), args.graphs_scope)
    peer = load_peer(args.peer_src.expanduser().resolve()) if args.peer_src else None

    rates = {"bf16": matmul_tflops(device, torch.bfloat16), "fp32": matmul_tflops(device, torch.float32)}
    # On CUDA the reference is the card's dense bf16 rate. CPUs without bf16 units run bf16 slower than fp32, so
    # there the reference is the faster of the two (else fp32 rows would show over 100%).
    reference = rates["bf16"] if device.type == "cuda" else max(rates.values())
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    header = [
        f"- device: {name}; torch {torch.__version__}"
        + (f", CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}" if device.type == "cuda" else ""),
        f"- dense matmul ({MATMUL_N if device.type == 'cuda' else 512}², median of 5): "
        f"bf16 {rates['bf16']:.3g} TFLOP/s, fp32 {rates['fp32']:.3g} TFLOP/s; '% of bf16 matmul' is against "
        + ("bf16" if device.type == "cuda" else "the faster of the two (CPU)"),
        f"- fp32 convolutions may use TF32: torch.backends.cudnn.allow_tf32={torch.backends.cudnn.allow_tf32} "
        f"(torch's default); cudnn.benchmark={torch.backends.cudnn.benchmark}",
        f"- {settings.warmup} warm-up steps (+2 for bf16_graphs), median of {settings.iters} timed steps; "
        f"AdamW lr {LEARNING_RATE}; MSE against a random target" + ("; --quick sizes" if args.quick else ""),
        "- TFLOP/s: FlopCounterMode's count of the network's own convolutions (forward + backward) per step / "
        "median step time; peak GiB: " + ("torch.cuda.max_memory_allocated over the timed steps" if device.type ==
                                          "cuda" else "rise of the process's peak RSS (VmHWM) during the row"),
        f"- peer: {peer.description if peer else 'none (no --peer-src): speed-ups are against fp32'}",
    ]
    print("\n".join(header), flush=True)
    rows: list[Row] = []
    notes: list[str] = []
    profile_text = ""
    flops_per_sample: dict[tuple[str, str], int] = {}

    def report() -> str:
        text = render(header, rows, configs, notes, profile_text)
        write_report(args.out, text, rows)
        return text

    for config in configs:
        for variant in variants:
            if variant == "openstl" and peer is None:
                notes.append(f"{config.label}: openstl skipped: no --peer-src given")
                print(f"{config.label} openstl: skipped: no --peer-src given", flush=True)
                continue
            if variant in CUDA_ONLY and device.type != "cuda":
                notes.append(f"{config.label}: {variant} skipped: needs CUDA")
                print(f"{config.label} {variant}: skipped: needs CUDA", flush=True)
                continue
            skips_before = counters["inductor"].get("cudagraph_skips", 0)
            for batch in batch_sizes(args, device):
                if args.time_limit and time.perf_counter() - started > args.time_limit:
                    notes.append(f"{config.label}: {variant} from batch {batch} on not run: --time-limit reached")
                    break
                network = "openstl" if variant == "openstl" else "ours"
                if (network, config.name) not in flops_per_sample:
                    # Every convolution's FLOPs are proportional to the batch: one count per network and grid.
                    flops_per_sample[network, config.name] = training_flops(network, config, 1, peer)
                flops = batch * flops_per_sample[network, config.name]
                row = run_row(variant, config, batch, settings, peer, flops, reference)
                if (variant == "bf16_graphs" and row.status.startswith("error") and settings.graphs_scope == "cells"
                        and not any(r.variant == variant and r.status == "ok" for r in rows)):
                    # Whichever runs: CUDA graphs of each cell's steps, else of the whole forward and backward.
                    notes.append(f"{config.label}: bf16_graphs per cell failed ({row.status}); ran the whole model")
                    settings = replace(settings, graphs_scope="model")
                    row = run_row(variant, config, batch, settings, peer, flops, reference)
                rows.append(row)
                shown = (f"{row.samples_per_s:.1f} samples/s, {row.tflops:.2f} TFLOP/s, {row.peak_gib:.2f} GiB"
                         if row.status == "ok" else row.status)
                print(f"{config.label} batch {batch} {variant}: {shown} [{time.perf_counter() - started:.0f} s]",
                      flush=True)
                report()
                if row.status != "ok":  # out of memory (or broken): larger batches will not do better
                    break
            if variant == "bf16_graphs":
                ran = [r for r in rows if r.variant == variant and r.config == config.name and r.note]
                if ran:
                    notes.append(f"{config.label}: bf16_graphs ran as: {ran[-1].note}")
                # Inductor falls back to plain compiled code, silently, for a graph it cannot capture.
                skips = counters["inductor"].get("cudagraph_skips", 0) - skips_before
                if skips:
                    notes.append(f"{config.label}: bf16_graphs: inductor skipped CUDA graphs for {skips} compiled "
                                 "graph(s) (run with TORCH_LOGS=perf_hints for the reasons)")
            release(device, compiled_state=variant == "bf16_graphs")
        # The profile right after the WeatherBench grid (or the first grid), before the larger one can use up
        # the time limit.
        if args.no_profile or profile_text or not (config.name.startswith("weatherbench") or config is configs[-1]):
            continue
        measured = [r for r in rows if r.config == config.name and r.status == "ok"]
        if not measured:
            continue
        if args.time_limit and time.perf_counter() - started > args.time_limit:
            notes.append("profile not run: --time-limit reached")
            continue
        fastest = max(measured, key=lambda r: r.samples_per_s)
        steps = args.profile_steps or (1 if args.quick else 3)
        try:
            profile_text = profile(fastest.variant, config, fastest.batch, settings, peer, steps)
        except Exception as exc:  # the figures above stand without it
            profile_text = f"### Profile of {fastest.variant} failed: {type(exc).__name__}: {exc}\n"
        release(device, compiled_state=True)
        report()
    print()
    print(report(), end="")
    print(f"[{time.perf_counter() - started:.0f} s]" + (f"; written to {args.out}" if args.out else ""))


if __name__ == "__main__":
    main()
