"""MONAI side of `concord bench sliding-window --export DIR`: the same U-Net weights (safetensors,
PyTorch state_dict keys), the same input, MONAI's sliding_window_inference with Gaussian blending
(sigma_scale 0.125), same overlap and window batch; prints time and the max difference to Concord.

    benchmarks/python/.venv/bin/python benchmarks/python/sliding_window.py DIR --size 96,192,192
"""
import resource, argparse, os, time
import numpy as np
import torch
from safetensors.torch import load_file
from monai.inferers import sliding_window_inference
from concord_models import UNet

ap = argparse.ArgumentParser()
ap.add_argument("dir")
ap.add_argument("--size", default="96,192,192")
ap.add_argument("--patch", type=int, default=64)
ap.add_argument("--overlap", type=float, default=0.5)
ap.add_argument("--batch", type=int, default=2)
ap.add_argument("--threads", type=int, default=os.cpu_count())
ap.add_argument("--blend", default="gaussian", choices=["gaussian", "constant"])
ap.add_argument("--device", default="cpu", help="cpu or cuda: where the network and the stitching run")
a = ap.parse_args()
dev = torch.device(a.device)
torch.set_num_threads(a.threads)
dims = [int(v) for v in a.size.split(",")]
net = UNet(2, 4)
net.load_state_dict(load_file(os.path.join(a.dir, "weights.safetensors")), strict=True)
net.eval().to(dev)
x = torch.from_numpy(np.fromfile(os.path.join(a.dir, "input.f32"), dtype=np.float32).reshape([1, 2] + dims))
with torch.no_grad():
    if dev.type == "cuda":
        torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    y = sliding_window_inference(x.to(dev), (a.patch,) * 3, a.batch, lambda w: torch.softmax(net(w), 1), overlap=a.overlap,
                                 mode=a.blend, sigma_scale=0.125, device=dev).cpu()
    dt = time.perf_counter() - t
ref = np.fromfile(os.path.join(a.dir, "output.f32"), dtype=np.float32).reshape([4] + dims)
diff = np.abs(y[0].numpy() - ref).max()
gpu = f", peak GPU {torch.cuda.max_memory_allocated() / 2**20:.0f} MB" if dev.type == "cuda" else ""
print(f"MONAI sliding_window_inference {a.size} on {dev}{gpu}: {dt:.2f} s, {np.prod(dims) / dt:.3g} voxels/s; max |MONAI - Concord| = {diff:.2e}; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
