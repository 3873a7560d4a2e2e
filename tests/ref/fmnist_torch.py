#!/usr/bin/python3
"""One-off PyTorch reference for docs/training.md: the reference CNN (smallcnn) on
Fashion-MNIST with the setup of libra-train's defaults (Adam lr 1e-3, batch 64, cross
entropy, 3 epochs, inputs normalised by the training set's mean/std, PyTorch's default
initialisation, shuffled every epoch, 1 thread). Prints the test accuracy after each epoch.
Run: /usr/bin/python3 tests/ref/fmnist_torch.py [seed]
"""
import gzip
import sys
import time

import numpy as np
import torch
import torch.nn as nn

D = "/usr/share/datasets/fashion-mnist/"


def idx(name):
    with gzip.open(D + name) as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


seed = int(sys.argv[1]) if len(sys.argv) > 1 else 1
torch.manual_seed(seed)
torch.set_num_threads(1)
xtr = idx("train-images-idx3-ubyte.gz").astype(np.float32) / 255
ytr = idx("train-labels-idx1-ubyte.gz").astype(np.int64)
xte = idx("t10k-images-idx3-ubyte.gz").astype(np.float32) / 255
yte = idx("t10k-labels-idx1-ubyte.gz").astype(np.int64)
mean, std = xtr.mean(), xtr.std()
xtr = torch.from_numpy((xtr - mean) / std).unsqueeze(1)
xte = torch.from_numpy((xte - mean) / std).unsqueeze(1)
ytr, yte = torch.from_numpy(ytr), torch.from_numpy(yte)

model = nn.Sequential(
    nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = nn.CrossEntropyLoss()
t0 = time.time()
for epoch in range(3):
    model.train()
    perm = torch.randperm(len(xtr))
    for i in range(0, len(xtr), 64):
        b = perm[i:i + 64]
        opt.zero_grad()
        loss = loss_fn(model(xtr[b]), ytr[b])
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(xte[i:i + 1000]).argmax(1) for i in range(0, len(xte), 1000)])
    acc = (pred == yte).float().mean().item()
    print("seed %d epoch %d test accuracy %.4f (%.0f s)" % (seed, epoch + 1, acc, time.time() - t0), flush=True)
