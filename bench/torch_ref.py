#!/usr/bin/python3
"""PyTorch reference for libra-bench: the same reference CNN (conv32-pool-conv64-pool-fc128-fc10),
the same Fashion-MNIST data, batch, Adam and thread count. Prints one JSON object per
configuration with the same keys as `libra-bench --json`.

usage: bench/torch_ref.py [--batch 64] [--threads 1] [--steps 60] [--repeats 5] [--warmup 10]
                          [--blas-threads 1]
--blas-threads: OpenBLAS's own threads under torch's (default 1: torch's best setting here;
0 leaves OPENBLAS_NUM_THREADS as the environment has it, i.e. torch's default behaviour).
"""
import argparse, gzip, json, os, resource, statistics, sys, time

def load_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    import numpy as np
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--data", default=os.environ.get("LIBRA_FMNIST_DIR", "/usr/share/datasets/fashion-mnist"))
    ap.add_argument("--blas-threads", type=int, default=1)
    a = ap.parse_args()
    if a.blas_threads > 0:  # read by OpenBLAS when torch loads it
        os.environ["OPENBLAS_NUM_THREADS"] = str(a.blas_threads)
    try:
        import torch, torch.nn as nn
    except ImportError:
        print("torch_ref: PyTorch is not installed (Debian package python3-torch)", file=sys.stderr)
        return 3
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    x = load_idx(os.path.join(a.data, "train-images-idx3-ubyte.gz"))
    y = load_idx(os.path.join(a.data, "train-labels-idx1-ubyte.gz"))
    # uint8 kept; each batch is normalised on the fly, as libra's batcher does
    xt = torch.from_numpy(x.copy())
    yt = torch.from_numpy(y.astype("int64"))
    mean, std = float(x.mean()) / 255.0, float(x.std()) / 255.0
    net = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    lossf = nn.CrossEntropyLoss()
    n = xt.shape[0]
    B = a.batch
    g = torch.Generator().manual_seed(0)

    def batch(i):
        idx = torch.randint(0, n, (B,), generator=g)
        xb = (xt[idx].float().unsqueeze(1) / 255.0 - mean) / std
        return xb, yt[idx]

    def train_steps(k):
        net.train()
        for _ in range(k):
            xb, yb = batch(0)
            opt.zero_grad(set_to_none=True)
            loss = lossf(net(xb), yb)
            loss.backward()
            opt.step()

    def eval_pass(k):
        net.eval()
        with torch.no_grad():
            for _ in range(k):
                xb, _ = batch(0)
                net(xb)

    train_steps(a.warmup)
    eval_pass(a.warmup)
    tr, ev = [], []
    for _ in range(a.repeats):
        t = time.perf_counter(); train_steps(a.steps); tr.append(a.steps * B / (time.perf_counter() - t))
        t = time.perf_counter(); eval_pass(a.steps); ev.append(a.steps * B / (time.perf_counter() - t))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    stat = lambda v: {"median": statistics.median(v), "min": min(v), "max": max(v)}
    print(json.dumps({"impl": "pytorch", "version": torch.__version__, "batch": B, "threads": a.threads,
                      "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
                      "train_images_per_s": stat(tr), "eval_images_per_s": stat(ev),
                      "peak_rss_mb": rss}))
    return 0

if __name__ == "__main__":
    sys.exit(main())
