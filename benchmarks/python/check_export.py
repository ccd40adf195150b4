#!/usr/bin/env python3
"""Checks a `concord export --format torchscript` file in plain PyTorch (no Concord code).

    concord export RUN --out model.pt --reference ref.safetensors
    python3 benchmarks/python/check_export.py model.pt ref.safetensors [--repeats 5]

Loads the module with torch.jit.load (reading its concord.json metadata), runs forward on the
reference input Concord wrote, and prints the largest absolute difference from Concord's output
(logits, or log-probabilities for averaged heads) and from its softmax, plus the median forward
time of the loaded module in eager mode. Exits 1 when the difference exceeds --tolerance.
Needs torch, safetensors, numpy.
"""
import argparse
import json
import statistics
import sys
import time

import os

import torch
from safetensors.torch import load_file


def eager_mirror(module, meta):
    """The same network as plain eager nn.Modules (concord_models.py) holding the exported weights,
    for cmc mean heads and supervised 3D runs with the default cubic kernels; None otherwise."""
    import concord_models as cm
    state = {k.replace("__", "."): v for k, v in list(module.named_parameters()) + list(module.named_buffers())}
    classes = len(meta["classNames"])
    # The mirror has the fixed cubic topology only: a planned run's per-axis kernels have no mirror.
    if any(v.dim() == 5 and len(set(v.shape[2:])) > 1 for v in state.values()):
        return None
    if meta["method"] == "cmc" and meta["head"] == "mean":
        widths = [state[f"encoders.0.stages.{i}.conv2.conv.weight"].shape[0]
                  for i in range(sum(1 for k in state if k.startswith("encoders.0.stages.") and k.endswith("conv2.conv.weight")))]
        net = cm.CMCNetwork(len(meta["inputChannels"]), classes, widths)
        net.load_state_dict(state, strict=True)
        net.eval()
        return lambda x: torch.log(torch.stack([l.softmax(1) for l in net([x[:, i:i + 1] for i in range(x.shape[1])])[0]]).mean(0))
    if meta["method"] == "supervised" and meta["spatialRank"] == 3:
        widths = [state[f"encoder.stages.{i}.conv2.conv.weight"].shape[0]
                  for i in range(sum(1 for k in state if k.startswith("encoder.stages.") and k.endswith("conv2.conv.weight")))]
        net = cm.UNet(len(meta["inputChannels"]), classes, widths)
        net.load_state_dict(state, strict=True)
        net.eval()
        return net
    return None


def main():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("reference")
    p.add_argument("--tolerance", type=float, default=1e-4)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0 = leave the default)")
    a = p.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)

    extra = {"concord.json": ""}
    start = time.perf_counter()
    module = torch.jit.load(a.model, map_location="cpu", _extra_files=extra)
    load_seconds = time.perf_counter() - start
    module.eval()
    meta = json.loads(extra["concord.json"])
    ref = load_file(a.reference)
    x, expected = ref["input"], ref["output"]
    def forward_seconds(model):
        """The model's output on x and the time of each of a.repeats further forward passes."""
        with torch.no_grad():
            y = model(x)
            seconds = []
            for _ in range(a.repeats):
                t = time.perf_counter()
                model(x)
                seconds.append(time.perf_counter() - t)
        return y, seconds

    out, times = forward_seconds(module)
    result = {}
    eager = eager_mirror(module, meta)
    if eager is not None:
        eager_out, times_eager = forward_seconds(eager)
        result = {"eager_max_abs_diff": (eager_out - expected).abs().max().item(),
                  "eager_forward_seconds_median": round(statistics.median(times_eager), 4)}
    diff = (out - expected).abs().max().item()
    prob_diff = (out.softmax(1) - expected.softmax(1)).abs().max().item()
    mask_agreement = (out.argmax(1) == expected.argmax(1)).float().mean().item()
    print(json.dumps({
        "torch": torch.__version__, "head": meta["head"], "output": meta["output"],
        "input_channels": meta["inputChannels"], "input_shape": list(x.shape),
        "max_abs_diff": diff, "max_abs_diff_softmax": prob_diff, "argmax_agreement": mask_agreement,
        "load_seconds": round(load_seconds, 3), "forward_seconds_median": round(statistics.median(times), 4),
        "threads": torch.get_num_threads(), **result,
    }))
    return 0 if diff <= a.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
