#!/usr/bin/env python3
"""A per-voxel intensity classifier on a run's cases: the floor a network should beat.

Each channel is z-scored per case over its non-zero voxels (as Concord normalises); a Gaussian
with a full covariance per class is fitted to the labelled training cases of a run
(RUN/splits.json "labeled"), and every test case (RUN/splits.json "test") is labelled voxel by
voxel by the most probable class (Bayes rule with the training class frequencies). No spatial
information at all: what intensity alone separates.

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
    models = {}
    for k in classes:
        xs = x[y == k]
        if len(xs) < channels + 1:
            continue
        cov = np.cov(xs.T) + 1e-6 * np.eye(channels)
        models[k] = (xs.mean(0), np.linalg.inv(cov), np.log(np.linalg.det(cov)), np.log(len(xs) / len(x)))
    dice = {labels[k]: [] for k in classes if k > 0}
    for case in splits["test"]:
        features = load(a.dataset, "imagesTr", case, channels)
        truth = np.asarray(nib.load(os.path.join(a.dataset, "labelsTr", f"{case}.nii.gz")).dataobj).ravel().astype(int)
        scores = []
        for k in classes:
            if k not in models:
                scores.append(np.full(len(features), -np.inf))
                continue
            mean, inv, logdet, prior = models[k]
            d = features - mean
            scores.append(-0.5 * np.einsum("ij,jk,ik->i", d, inv, d) - 0.5 * logdet + prior)
        prediction = np.array(classes)[np.argmax(np.stack(scores, 1), 1)]
        for k in classes:
            if k == 0:
                continue
            p_, t_ = prediction == k, truth == k
            total = p_.sum() + t_.sum()
            dice[labels[k]].append(1.0 if total == 0 else 2 * (p_ & t_).sum() / total)
    summary = {name: float(np.mean(v)) for name, v in dice.items()}
    summary["mean"] = float(np.mean(list(summary.values())))
    result = {"classifier": "per-voxel Gaussian, full covariance, per-case z-scored channels", "train_cases": len(train),
              "test_cases": len(splits["test"]), "dice": summary, "per_case": {n: [round(v, 4) for v in d] for n, d in dice.items()}}
    print(json.dumps(result, indent=1))
    if a.json:
        json.dump(result, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
