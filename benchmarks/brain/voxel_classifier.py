#!/usr/bin/env python3
"""A per-voxel intensity classifier on a run's cases: the floor a network should beat.

Each channel is z-scored per case over its non-zero voxels (as Concord normalises); the joint
histogram of the channels (BINS per channel over [-4, 4] standard deviations, add-one smoothing)
is counted per class on the labelled training cases of a run (RUN/splits.json "labeled"), and
every test case (RUN/splits.json "test") is labelled voxel by voxel by the class with the most
training voxels in its bin: the Bayes rule of the empirical joint intensity distribution, a
non-parametric classifier (a Gaussian per class fails here: the background class mixes air,
scalp, CSF and grey matter). No spatial information at all: what intensity alone separates.

    python3 benchmarks/brain/voxel_classifier.py DATASET RUN [--json OUT.json]

Prints per-class and mean Dice over the test cases (the same convention as `concord evaluate`:
a class absent from both masks counts as 1). Needs numpy and nibabel.
"""
import argparse
import json
import os

import nibabel as nib
import numpy as np


def load(dataset, folder, case, channels):
    images = [np.asarray(nib.load(os.path.join(dataset, folder, f"{case}_{c:04d}.nii.gz")).dataobj, dtype=np.float64)
              for c in range(channels)]
    features = []
    for x in images:
        nonzero = x != 0
        mean, std = x[nonzero].mean(), x[nonzero].std() + 1e-8
        features.append((x - mean) / std)
    return np.stack([f.ravel() for f in features], 1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dataset")
    p.add_argument("run")
    p.add_argument("--json")
    p.add_argument("--bins", type=int, default=48)
    a = p.parse_args()
    description = json.load(open(os.path.join(a.dataset, "dataset.json")))
    channels = len(description["channel_names"])
    labels = {int(v): k for k, v in description["labels"].items()}
    classes = sorted(labels)
    splits = json.load(open(os.path.join(a.run, "splits.json")))
    train = splits["labeled"]
    train = train if isinstance(train, list) else []
    x_train, y_train = [], []
    for case in train:
        x_train.append(load(a.dataset, "imagesTr", case, channels))
        y_train.append(np.asarray(nib.load(os.path.join(a.dataset, "labelsTr", f"{case}.nii.gz")).dataobj).ravel().astype(int))
    x, y = np.concatenate(x_train), np.concatenate(y_train)
    bins = a.bins
    def bin_index(features):
        cells = np.clip(((features + 4) / 8 * bins).astype(int), 0, bins - 1)
        index = np.zeros(len(features), dtype=np.int64)
        for c in range(channels):
            index = index * bins + cells[:, c]
        return index
    cells_train = bin_index(x)
    counts = np.ones((len(classes), bins ** channels))   # add-one smoothing
    for i, k in enumerate(classes):
        counts[i] += np.bincount(cells_train[y == k], minlength=bins ** channels)
    lookup = np.array(classes)[np.argmax(counts, 0)]
    dice = {labels[k]: [] for k in classes if k > 0}
    for case in splits["test"]:
        features = load(a.dataset, "imagesTr", case, channels)
        truth = np.asarray(nib.load(os.path.join(a.dataset, "labelsTr", f"{case}.nii.gz")).dataobj).ravel().astype(int)
        prediction = lookup[bin_index(features)]
        for k in classes:
            if k == 0:
                continue
            p_, t_ = prediction == k, truth == k
            total = p_.sum() + t_.sum()
            dice[labels[k]].append(1.0 if total == 0 else 2 * (p_ & t_).sum() / total)
    summary = {name: float(np.mean(v)) for name, v in dice.items()}
    summary["mean"] = float(np.mean(list(summary.values())))
    result = {"classifier": f"per-voxel Bayes rule of the joint intensity histogram ({bins} bins per channel), per-case z-scored channels", "train_cases": len(train),
              "test_cases": len(splits["test"]), "dice": summary, "per_case": {n: [round(v, 4) for v in d] for n, d in dice.items()}}
    print(json.dumps(result, indent=1))
    if a.json:
        json.dump(result, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
