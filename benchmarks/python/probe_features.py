"""Linear probes on a trained Concord U-Net (BENCHMARKS.md, "Why the early-fusion U-Net failed at
seed 1"): loads RUN/checkpoints/last.safetensors into the PyTorch mirror, runs the first 12 cached
cases (RUN/preprocessed), and for each encoder/decoder stage reports
  - how well a fresh linear classifier on that stage's features separates the classes (Dice of a
    class-balanced softmax regression fitted on the same voxels: an upper bound of what the next
    layers could read off), and
  - per class, the fraction of (voxel, channel) activations that are positive (LeakyReLU's
    linear branch; the rest sit on its 0.01 slope, where gradients are 100x smaller).

    python probe_features.py RUN [RUN ...]      # runs trained with widths 8,16,32,64, 2 channels
"""
import glob
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from concord_models import UNet  # noqa: E402

torch.set_num_threads(1)
torch.manual_seed(0)
STAGES = ["encoder.stages.0", "encoder.stages.1", "encoder.stages.2", "encoder.stages.3",
          "decoder.stages.0", "decoder.stages.1", "decoder.stages.2"]


def probe(features, labels):
    channels = features.shape[1]
    fx = features.movedim(1, -1).reshape(-1, channels)
    fy = labels.reshape(-1)
    head = torch.nn.Linear(channels, 4)
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    weight = 1 / torch.bincount(fy, minlength=4).float()
    for _ in range(300):
        loss = F.cross_entropy(head(fx), fy, weight=weight / weight.sum())
        opt.zero_grad()
        loss.backward()
        opt.step()
    pred = head(fx).argmax(1)
    dice = [float(2 * ((pred == c) & (fy == c)).sum() / ((pred == c).sum() + (fy == c).sum())) for c in (1, 2, 3)]
    positive = [float((fx[fy == c] > 0).float().mean()) for c in range(4)]
    return dice, positive


for run in sys.argv[1:]:
    cases = [load_file(f) for f in sorted(glob.glob(os.path.join(run, "preprocessed", "*.safetensors")))[:12]]
    x = torch.stack([c["images"] for c in cases])
    y = torch.stack([c["label"] for c in cases])
    net = UNet(x.shape[1], 4, (8, 16, 32, 64))
    state = load_file(os.path.join(run, "checkpoints", "last.safetensors"))
    net.load_state_dict({k[len("model."):]: v for k, v in state.items() if k.startswith("model.")})
    seen = {}
    for name, module in net.named_modules():
        if name in STAGES:
            module.register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, o.detach()))
    with torch.no_grad():
        net(x)
    for name in STAGES:
        f = seen[name]
        step = y.shape[-1] // f.shape[-1]
        dice, positive = probe(f, y[:, ::step, ::step, ::step])
        print(f"{run} {name:17s} {f.shape[1]:3d} ch  probe Dice LV/Myo/RV {dice[0]:.2f} {dice[1]:.2f} {dice[2]:.2f}  "
              f"positive bg/LV/Myo/RV {positive[0]:.2f} {positive[1]:.2f} {positive[2]:.2f} {positive[3]:.2f}")
