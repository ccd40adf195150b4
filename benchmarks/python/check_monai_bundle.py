#!/usr/bin/env python3
"""Runs a `concord export --format monai-bundle` folder with MONAI on cases and compares its masks
with `concord predict`'s.

    concord export RUN --format monai-bundle --out BUNDLE
    concord predict --run RUN --input CASES --out CONCORD_MASKS
    python3 benchmarks/python/check_monai_bundle.py BUNDLE CONCORD_MASKS CASE_0000.nii.gz [CASE_0001.nii.gz ...] \\
        [--case-files CASE2_0000.nii.gz,CASE2_0001.nii.gz ...]

Each case is given by its channel files (CASE_XXXX.nii.gz, in the head's channel order). The
bundle's configs/inference.json is parsed with monai.bundle.ConfigParser, its datalist replaced
by the cases and its output_dir by a temporary folder; then per case and class the Dice between
the bundle's mask and Concord's mask (CONCORD_MASKS/CASE.nii.gz) is printed. Exits 1 when any
mean Dice is below --min-dice. Needs torch, monai, nibabel, numpy.
"""
import argparse
import json
import os
import re
import sys
import tempfile

import nibabel as nib
import numpy as np


def main():
    p = argparse.ArgumentParser()
    p.add_argument("bundle")
    p.add_argument("concord_masks")
    p.add_argument("cases", nargs="+", help="per case: comma-separated channel files")
    p.add_argument("--min-dice", type=float, default=0.99)
    a = p.parse_args()

    from monai.bundle import ConfigParser

    meta = json.load(open(os.path.join(a.bundle, "configs", "metadata.json")))
    classes = meta["network_data_format"]["outputs"]["pred"]["channel_def"]
    parser = ConfigParser()
    parser.read_config(os.path.join(a.bundle, "configs", "inference.json"))
    scratch = tempfile.TemporaryDirectory(prefix="concord-bundle-")
    out = scratch.name
    datalist = []
    for case in a.cases:
        files = case.split(",")
        datalist.append({f"image_{i}": os.path.abspath(f) for i, f in enumerate(files)})
    parser["bundle_root"] = os.path.abspath(a.bundle)
    parser["output_dir"] = out
    parser["datalist"] = datalist
    parser.parse(True)
    parser.get_parsed_content("initialize")   # evaluating the lists runs their expressions
    parser.get_parsed_content("run")

    worst = 1.0
    report = []
    for case in a.cases:
        first = os.path.basename(case.split(",")[0])
        name = re.sub(r"_\d{4}\.nii(\.gz)?$", "", first)
        stem = re.sub(r"\.nii(\.gz)?$", "", first)
        bundle_mask = np.asarray(nib.load(os.path.join(out, stem + "_seg.nii.gz")).dataobj).squeeze().astype(np.int64)
        concord_mask = np.asarray(nib.load(os.path.join(a.concord_masks, name + ".nii.gz")).dataobj).astype(np.int64)
        if bundle_mask.shape != concord_mask.shape:
            print(f"{name}: shapes differ: bundle {bundle_mask.shape}, concord {concord_mask.shape}")
            return 1
        dice = {}
        for index, label in classes.items():
            k = int(index)
            if k == 0:
                continue
            x, y = bundle_mask == k, concord_mask == k
            denominator = x.sum() + y.sum()
            dice[label] = 1.0 if denominator == 0 else float(2 * (x & y).sum() / denominator)
        mean = float(np.mean(list(dice.values())))
        worst = min(worst, mean)
        report.append({"case": name, "mean_dice": round(mean, 4), "dice": {k: round(v, 4) for k, v in dice.items()},
                       "voxels_differing": int((bundle_mask != concord_mask).sum()), "voxels": int(bundle_mask.size)})
    print(json.dumps(report, indent=1))
    return 0 if worst >= a.min_dice else 1


if __name__ == "__main__":
    sys.exit(main())
