"""nibabel side of `concord bench nifti FILE`: time to read a .nii.gz into float32 (scaled).

    benchmarks/python/.venv/bin/python benchmarks/python/nifti_read.py FILE
"""
import resource, sys, time
import nibabel as nib
import numpy as np

path = sys.argv[1]
times = []
for i in range(6):
    t = time.perf_counter()
    data = nib.load(path).get_fdata(dtype=np.float32)
    times.append(time.perf_counter() - t)
times = sorted(times[1:])
print(f"nibabel {path}: median {times[len(times) // 2]:.4f} s (min {times[0]:.4f}) shape {data.shape}; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
