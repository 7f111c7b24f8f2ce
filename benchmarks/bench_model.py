"""Training throughput, achieved FLOP rate and peak memory of the ConvLSTM forecaster vs an OpenSTL-style net.

Usage: ``python benchmarks/bench_model.py [--quick] [--iters N] [--batch N] [--configs small,weatherbench]``.
Each row runs in its own process, so peak memory (CPU: peak RSS above the post-import baseline;
GPU: ``torch.cuda.max_memory_allocated``) and ``torch.compile`` caches belong to that row alone.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass

import psutil
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from forecast.models import ConvLSTMForecaster


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


CONFIGS = {
    "small": Config("small", 16, 32, 2, 6, 6, (32, 32), 3, 1),
    # WeatherBench 5.625° grid (Rasp et al. 2020, https://arxiv.org/abs/2002.00469).
    "weatherbench": Config("weatherbench", 32, 64, 3, 12, 12, (128, 128, 128, 128), 5, 2),
}
VARIANTS = ("eager", "channels_last", "compile_cell", "bf16_compile_cell", "openstl_eager")
CUDA_ONLY = ("bf16_compile_cell",)


# --- OpenSTL-style reference, written from the description of its design (not copied) ---------------
class OpenSTLStyleCell(nn.Module):
    """Two convolutions per step, as the widely copied OpenSTL cell: ``conv_x`` and ``conv_h``.

    ``conv_x`` produces 7*hidden channels of which only the first 4*hidden are used (the unused
    weights of the PredRNN-derived design are kept on purpose: they cost compute and memory).
    """

    def __init__(self, in_channels: int, hidden: int, kernel_size: int, forget_bias: float = 1.0) -> None:
        super().__init__()
        self.hidden, self.forget_bias = hidden, forget_bias
        padding = kernel_size // 2
        self.conv_x = nn.Conv2d(in_channels, 7 * hidden, kernel_size, padding=padding, bias=False)
        self.conv_h = nn.Conv2d(hidden, 4 * hidden, kernel_size, padding=padding, bias=False)

    def forward(self, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        i_x, f_x, g_x, o_x, *_unused = self.conv_x(x).split(self.hidden, dim=1)  # 7 x [B, hidden, H, W]
        i_h, f_h, g_h, o_h = self.conv_h(h).split(self.hidden, dim=1)  # 4 x [B, hidden, H, W]
        i = torch.sigmoid(i_x + i_h)
        f = torch.sigmoid(f_x + f_h + self.forget_bias)
        c = f * c + i * torch.tanh(g_x + g_h)
        h = torch.sigmoid(o_x + o_h) * torch.tanh(c)
        return h, c


class OpenSTLStyleConvLSTM(nn.Module):
    """One stack run over ``T_in + T_out - 1`` frames, inputs switched to its own predictions after T_in."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config
        patch_channels = config.channels * config.patch_size**2
        sizes = [patch_channels, *config.hidden]
        self.cells = nn.ModuleList(
            OpenSTLStyleCell(c_in, c_out, config.kernel_size) for c_in, c_out in itertools.pairwise(sizes)
        )
        self.conv_last = nn.Conv2d(config.hidden[-1], patch_channels, 1, bias=False)

    def patch(self, frames: Tensor) -> Tensor:
        """``[B, T, C, H, W]`` to ``[B, T, C*p², H/p, W/p]`` through reshapes (H, W multiples of p)."""
        b, t, c, h, w = frames.shape
        p = self.config.patch_size
        frames = frames.permute(0, 1, 3, 4, 2)  # [B, T, H, W, C]
        frames = frames.reshape(b, t, h // p, p, w // p, p, c)  # [B, T, H/p, p, W/p, p, C]
        frames = frames.permute(0, 1, 2, 4, 3, 5, 6)  # [B, T, H/p, W/p, p, p, C]
        frames = frames.reshape(b, t, h // p, w // p, p * p * c)  # [B, T, H/p, W/p, p*p*C]
        return frames.permute(0, 1, 4, 2, 3)  # [B, T, p*p*C, H/p, W/p]

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Predict frames 2..T_in+T_out ``[B, T_in+T_out-1, C*p², H/p, W/p]`` (patched)."""
        frames = self.patch(torch.cat([x, y], dim=1))  # [B, T_in+T_out, C*p², H/p, W/p]
        batch, _, _, height, width = frames.shape
        # States start as zero tensors, so step 1 runs conv_h on zeros as the original does.
        h = [frames.new_zeros(batch, n, height, width) for n in self.config.hidden]
        c = [frames.new_zeros(batch, n, height, width) for n in self.config.hidden]
        # Scheduled-sampling mask, all zeros (free running) after T_in, mixed in as the original does.
        mask = torch.zeros_like(frames[:, 0])
        predictions: list[Tensor] = []
        for t in range(frames.shape[1] - 1):
            net = frames[:, t] if t < self.config.input_steps else mask * frames[:, t] + (1 - mask) * predictions[-1]
            for layer, cell in enumerate(self.cells):
                h[layer], c[layer] = cell(net if layer == 0 else h[layer - 1], h[layer], c[layer])
            predictions.append(self.conv_last(h[-1]))
        return torch.stack(predictions, dim=1)  # [B, T_in+T_out-1, C*p², H/p, W/p]


# --- work count and machine limit ---------------------------------------------------------------------
def training_flops_per_sample(config: Config, steps: int) -> float:
    """FLOPs of one training sample: 2 per multiply-add, forward+backward ≈ 3x forward.

    Multiply-adds per step and layer: H'·W'·k²·4·h·(c_in + h), H', W' after patching (the useful
    gate convolutions only; OpenSTL's unused conv_x channels are not counted as work).
    """
    grid = -(-config.height // config.patch_size) * -(-config.width // config.patch_size)
    sizes = [config.channels * config.patch_size**2, *config.hidden]
    per_step = sum(grid * config.kernel_size**2 * 4 * h * (c_in + h) for c_in, h in itertools.pairwise(sizes))
    return 3 * 2 * per_step * steps


def matmul_gflops(device: torch.device, dtype: torch.dtype, trials: int = 5) -> float:
    """Rate of a large square matmul, best of ``trials``: the practical peak of this device for ``dtype``."""
    n = 2048 if device.type == "cpu" else 8192
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    reps = 3 if device.type == "cpu" else 50
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(trials):
        synchronize(device)
        start = time.perf_counter()
        for _ in range(reps):
            torch.matmul(a, b)
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 * reps / best / 1e9


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- one row (run in a child process) --------------------------------------------------------------------
def build_row(config: Config, variant: str, device: torch.device) -> tuple[nn.Module, int]:
    """The network for a variant and its recurrent steps per sample."""
    if variant == "openstl_eager":
        return OpenSTLStyleConvLSTM(config).to(device), config.input_steps + config.output_steps - 1
    net = ConvLSTMForecaster(config.channels, config.hidden, config.kernel_size, config.patch_size).to(device)
    if variant == "channels_last":
        net = net.to(memory_format=torch.channels_last)
    if "compile_cell" in variant:
        net.compile_cells()
    return net, config.input_steps + config.output_steps


def training_step(net: nn.Module, optimizer: torch.optim.Optimizer, x: Tensor, y: Tensor, variant: str) -> None:
    autocast = torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=variant.startswith("bf16"))
    with autocast:
        if isinstance(net, OpenSTLStyleConvLSTM):
            loss = F.mse_loss(net(x, y), net.patch(torch.cat([x, y], dim=1))[:, 1:])
        else:
            loss = F.mse_loss(net(x, y.shape[1], y, teacher_forcing=0.0), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def run_row(spec: dict) -> dict:
    """Time ``iters`` training steps after ``warmup`` ones; return the measured row."""
    config, device = CONFIGS[spec["config"]], torch.device(spec["device"])
    baseline_kib = psutil.Process().memory_info().rss / 1024
    torch.manual_seed(0)
    net, steps = build_row(config, spec["variant"], device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    shape = (spec["batch"], config.channels, config.height, config.width)
    x = torch.randn(shape[0], config.input_steps, *shape[1:], device=device)
    y = torch.randn(shape[0], config.output_steps, *shape[1:], device=device)
    for _ in range(spec["warmup"]):
        training_step(net, optimizer, x, y, spec["variant"])
    synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    # Each iteration timed alone and the fastest kept: on a shared machine other processes only
    # ever slow an iteration down, so the minimum is the best estimate of what the code can do.
    seconds = float("inf")
    for _ in range(spec["iters"]):
        start = time.perf_counter()
        training_step(net, optimizer, x, y, spec["variant"])
        synchronize(device)
        seconds = min(seconds, time.perf_counter() - start)
    if device.type == "cuda":
        peak_mib = torch.cuda.max_memory_allocated(device) / 2**20
    else:  # ru_maxrss is in KiB on Linux: the process's lifetime peak, minus what imports took
        peak_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline_kib) / 1024
    samples_per_s = spec["batch"] / seconds
    gflops = samples_per_s * training_flops_per_sample(config, steps) / 1e9
    return {**spec, "samples_per_s": samples_per_s, "gflops": gflops, "peak_mib": peak_mib}


# --- driver ------------------------------------------------------------------------------------------------
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="small,weatherbench", help="comma-separated: " + ", ".join(CONFIGS))
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of the variants")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, help="samples per step (default 4 on CPU, 16 on GPU)")
    parser.add_argument("--iters", type=int, help="timed iterations, the fastest reported (default 10, 3 --quick)")
    parser.add_argument("--warmup", type=int, help="untimed iterations first (default 3, 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="few iterations: a rough figure in minutes on a CPU")
    parser.add_argument("--row", help=argparse.SUPPRESS)  # internal: run one row, print it as JSON
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.row:
        print(json.dumps(run_row(json.loads(args.row))))
        return
    device = torch.device(args.device)
    batch = args.batch or (16 if device.type == "cuda" else 4)
    iters = args.iters or (3 if args.quick else 10)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    peaks = {"fp32": matmul_gflops(device, torch.float32)}
    if device.type == "cuda":
        peaks["bf16"] = matmul_gflops(device, torch.bfloat16)
    print(
        f"device {device} ({torch.get_num_threads()} threads), torch {torch.__version__}; batch {batch}, "
        f"{warmup} warm-up + fastest of {iters} timed iterations; matmul peak "
        + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peaks.items())
    )
    header = (
        f"{'config':<13} {'variant':<18} {'batch':>5} {'samples/s':>10} {'GFLOP/s':>8} {'% peak':>7} {'peak MiB':>9}"
    )
    print(header)
    print("-" * len(header))
    for config in args.configs.split(","):
        for variant in args.variants.split(","):
            if variant in CUDA_ONLY and device.type != "cuda":
                continue
            spec = {
                "config": config,
                "variant": variant,
                "device": str(device),
                "batch": batch,
                "iters": iters,
                "warmup": warmup,
            }
            done = subprocess.run(
                [sys.executable, __file__, "--row", json.dumps(spec)],
                capture_output=True,
                text=True,
                check=False,
                env=os.environ,
            )
            if done.returncode != 0:
                print(f"{config:<13} {variant:<18} failed: {done.stderr.strip().splitlines()[-1:]}")
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            peak = peaks["bf16" if variant.startswith("bf16") else "fp32"]
            print(
                f"{config:<13} {variant:<18} {batch:>5} {row['samples_per_s']:>10.2f} {row['gflops']:>8.1f} "
                f"{100 * row['gflops'] / peak:>6.1f}% {row['peak_mib']:>9.0f}",
                flush=True,
            )
    print("GFLOP/s counts the useful gate convolutions, 2 FLOPs per multiply-add, training = 3x forward.")


if __name__ == "__main__":
    main()
