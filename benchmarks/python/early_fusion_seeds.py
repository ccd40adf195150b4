"""The early-fusion U-Net of the method comparison, trained in PyTorch on Concord's preprocessed
phantom cases, to tell a Concord bug from a property of the recipe (BENCHMARKS.md, "Why the
early-fusion U-Net failed at seed 1").

Same network as Concord's experiment (U-Net 8-16-32-64, instance norm, LeakyReLU 0.01, both
channels stacked), Dice (per sample, background included, smooth 1e-5) + CE, Adam lr 3e-3 with
L2 1e-4, poly schedule, gradient clipping at 12, batch 2 of whole 24x48x48 cases with random
flips per axis. The cases are a Concord run's cache (RUN/preprocessed/*.safetensors: images
(2, D, H, W) z-scored, label (D, H, W)); the last 6 labelled cases are held out for the Dice.

    python early_fusion_seeds.py --cases RUN/preprocessed --seed 1 [--init pytorch|he]
        [--optimizer adam|adamw|adam-no-decay|sgd] [--dice with-background|foreground]
        [--widths 8,16,32,64] [--no-flips] [--iterations 300]
"""
import argparse
import glob
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from concord_models import UNet  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--cases", required=True)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--iterations", type=int, default=300)
ap.add_argument("--init", choices=["pytorch", "he"], default="pytorch")
ap.add_argument("--optimizer", choices=["adam", "adamw", "adam-no-decay", "sgd"], default="adam")
ap.add_argument("--dice", choices=["with-background", "foreground"], default="with-background")
ap.add_argument("--widths", default="8,16,32,64")
ap.add_argument("--no-flips", action="store_true")
ap.add_argument("--threads", type=int, default=1)
a = ap.parse_args()
torch.set_num_threads(a.threads)

data = [load_file(f) for f in sorted(glob.glob(os.path.join(a.cases, "*.safetensors")))]
data = [d for d in data if "label" in d]
X = torch.stack([d["images"] for d in data])
Y = torch.stack([d["label"] for d in data])
train, test = list(range(len(data) - 6)), list(range(len(data) - 6, len(data)))

torch.manual_seed(a.seed)
net = UNet(X.shape[1], 4, tuple(int(w) for w in a.widths.split(",")))
if a.init == "he":  # nnU-Net's InitWeights_He(1e-2)
    for m in net.modules():
        if isinstance(m, (torch.nn.Conv3d, torch.nn.ConvTranspose3d)):
            torch.nn.init.kaiming_normal_(m.weight, a=1e-2)
            torch.nn.init.zeros_(m.bias)
params = net.parameters()
opt = {"adam": lambda: torch.optim.Adam(params, lr=3e-3, weight_decay=1e-4),
       "adamw": lambda: torch.optim.AdamW(params, lr=3e-3, weight_decay=1e-4),
       "adam-no-decay": lambda: torch.optim.Adam(params, lr=3e-3, weight_decay=0),
       "sgd": lambda: torch.optim.SGD(params, lr=1e-2, momentum=0.99, nesterov=True, weight_decay=3e-5)}[a.optimizer]()
base_lr = opt.param_groups[0]["lr"]


def loss_fn(logits, target, smooth=1e-5):
    p = torch.softmax(logits, 1)
    y = F.one_hot(target, logits.shape[1]).movedim(-1, 1).to(p.dtype)
    dims = tuple(range(2, p.ndim))
    dice = (2 * (p * y).sum(dims) + smooth) / (p.sum(dims) + y.sum(dims) + smooth)
    if a.dice == "foreground":
        dice = dice[:, 1:]
    return 1 - dice.mean() + F.cross_entropy(logits, target)


g = torch.Generator().manual_seed(1000 + a.seed)
for it in range(a.iterations):
    for group in opt.param_groups:
        group["lr"] = base_lr * (1 - it / a.iterations) ** 0.9
    idx = torch.randint(0, len(train), (2,), generator=g)
    x, y = X[idx].clone(), Y[idx].clone()
    for axis in range(3):
        if torch.rand(1, generator=g) < 0.5 and not a.no_flips:
            x, y = x.flip(2 + axis), y.flip(1 + axis)
    loss = loss_fn(net(x), y)
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 12)
    opt.step()
with torch.no_grad():
    p = net(X[test]).argmax(1)
dice = [float(2 * ((p == c) & (Y[test] == c)).sum() / ((p == c).sum() + (Y[test] == c).sum())) for c in (1, 2, 3)]
print(f"seed {a.seed} init {a.init} optimizer {a.optimizer} dice {a.dice} widths {a.widths} flips {not a.no_flips} "
      f"iterations {a.iterations}: test Dice LV {dice[0]:.3f} Myo {dice[1]:.3f} RV {dice[2]:.3f}")
