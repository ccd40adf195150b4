"""medpy and MONAI side of `concord bench metrics`: the same two sphere masks.

    benchmarks/python/.venv/bin/python benchmarks/python/metrics.py
"""
import time
import numpy as np
from medpy.metric import binary

nx, ny, nz = 256, 256, 128
i, j, k = np.meshgrid(np.arange(nx) - 128, np.arange(ny) - 128, np.arange(nz) - 64, indexing="ij")
a = (i**2 + j**2 + k**2) <= 40**2
b = ((i - 3)**2 + (j + 2)**2 + (k - 1)**2) <= 42**2
sp = (0.8, 0.8, 2.5)

t = time.perf_counter(); hd95 = binary.hd95(a, b, voxelspacing=sp); t_hd95 = time.perf_counter() - t
t = time.perf_counter()
vals = dict(dice=binary.dc(a, b), hd95=binary.hd95(a, b, sp), hd=binary.hd(a, b, sp), asd=binary.asd(a, b, sp), assd=binary.assd(a, b, sp))
t_all = time.perf_counter() - t
import resource
print(f"medpy: hd95 alone {t_hd95:.3f} s; dc+hd95+hd+asd+assd {t_all:.3f} s; " + " ".join(f"{k} {v:.6f}" for k, v in vals.items()) + f"; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB (before MONAI)")

try:
    import torch
    from monai.metrics import compute_hausdorff_distance, compute_average_surface_distance
    pa = torch.from_numpy(a)[None, None].float(); pb = torch.from_numpy(b)[None, None].float()
    t = time.perf_counter()
    h = compute_hausdorff_distance(pa, pb, include_background=True, percentile=95, spacing=sp)
    s = compute_average_surface_distance(pa, pb, include_background=True, symmetric=True, spacing=sp)
    print(f"MONAI: hd95 + symmetric asd {time.perf_counter() - t:.3f} s; hd95 {h.item():.6f} assd {s.item():.6f}")
except Exception as e:  # MONAI's edge handling differs; report, do not hide
    print("MONAI failed:", e)
