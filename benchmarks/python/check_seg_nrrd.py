#!/usr/bin/env python3
"""Checks `concord predict --format seg.nrrd` masks against the same prediction as NIfTI, read by
nibabel: same labels voxel for voxel, and the NRRD's space directions/origin equal the NIfTI
affine (both RAS). The NRRD is parsed with the standard library (header text, gzip payload).

    python3 benchmarks/python/check_seg_nrrd.py NRRD_FOLDER NIFTI_FOLDER
"""
import gzip
import os
import re
import sys

import nibabel as nib
import numpy as np


def read_seg_nrrd(path):
    raw = open(path, "rb").read()
    end = raw.index(b"\n\n")
    fields = {}
    for line in raw[:end].decode().splitlines()[1:]:
        if line.startswith("#"):
            continue
        key, _, value = line.partition(":=") if ":=" in line else line.partition(": ")
        fields[key] = value
    sizes = [int(s) for s in fields["sizes"].split()]
    data = np.frombuffer(gzip.decompress(raw[end + 2:]), dtype=np.uint8).reshape(sizes, order="F")
    directions = [[float(v) for v in d.strip("()").split(",")] for d in fields["space directions"].split()]
    origin = [float(v) for v in fields["space origin"].strip("()").split(",")]
    affine = np.eye(4)
    affine[:3, :3] = np.array(directions).T
    affine[:3, 3] = origin
    names = {int(fields[k]): fields[k.replace("LabelValue", "Name")] for k in fields if re.match(r"Segment\d+_LabelValue", k)}
    return data, affine, names


def main():
    nrrd_folder, nifti_folder = sys.argv[1], sys.argv[2]
    files = sorted(f for f in os.listdir(nrrd_folder) if f.endswith(".seg.nrrd"))
    if not files:
        print("no .seg.nrrd files")
        return 1
    status = 0
    for f in files:
        name = f[: -len(".seg.nrrd")]
        data, affine, names = read_seg_nrrd(os.path.join(nrrd_folder, f))
        image = nib.load(os.path.join(nifti_folder, name + ".nii.gz"))
        reference = np.asarray(image.dataobj).astype(np.uint8)
        same = data.shape == reference.shape and bool((data == reference).all())
        affine_error = float(np.abs(affine - image.affine).max())
        print(f"{name}: labels equal {same}, max affine difference {affine_error:.2e}, segments {names}")
        if not same or affine_error > 1e-4:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
