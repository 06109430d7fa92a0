"""How fast evaluation could be on this CPU: the model's work per face against the CPU's measured peak.

    python -m bench.roofline [--size 2048] [--reps 10]

Prints one JSON line per number type (fp32, bf16, int8): the GEMM rate this
CPU reaches on a large square matrix product (GFLOP/s; int8 counts a
multiply-add as 2 ops, like the float types), the model's work per face
(GFLOP, counted by torch.utils.flop_counter on the shipped checkpoint) and the
resulting ceiling in faces per second, which no backend can pass: convolutions
reach at most the rate of a large GEMM.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch


def gemm_gflops(dtype: torch.dtype, n: int, reps: int) -> float:
    if dtype == torch.int8:
        a, b = (torch.randint(-100, 100, (n, n), dtype=torch.int8) for _ in range(2))
        matmul = torch._int_mm
    else:
        a, b = (torch.randn(n, n).to(dtype) for _ in range(2))
        matmul = torch.mm
    for _ in range(3):
        matmul(a, b)
    start = time.perf_counter()
    for _ in range(reps):
        matmul(a, b)
    return 2 * n ** 3 * reps / (time.perf_counter() - start) / 1e9


def model_gflop_per_face() -> float:
    from torch.utils.flop_counter import FlopCounterMode

    from fer_demo.core.checkpoint import load_model

    model, config = load_model()
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(torch.zeros(1, 1, config["input_size"], config["input_size"]))
    return counter.get_total_flops() / 1e9


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=2048, help="GEMM side (default 2048)")
    p.add_argument("--reps", type=int, default=10)
    args = p.parse_args(argv)
    per_face = model_gflop_per_face()
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16), ("int8", torch.int8)):
        try:
            peak = gemm_gflops(dtype, args.size, args.reps)
        except RuntimeError as e:  # e.g. no int8 GEMM kernel on this CPU
            print(json.dumps({"bench": "roofline", "dtype": name, "error": str(e)[:200]}))
            continue
        print(json.dumps({"bench": "roofline", "dtype": name, "gemm_gflop_s": round(peak, 1),
                          "model_gflop_per_face": round(per_face, 4),
                          "ceiling_faces_s": round(peak / per_face), "threads": torch.get_num_threads()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
