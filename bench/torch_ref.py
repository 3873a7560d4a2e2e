#!/usr/bin/python3
"""PyTorch reference for libra-bench: the same reference CNN (conv32-pool-conv64-pool-fc128-fc10),
the same Fashion-MNIST data, batch, Adam and thread count. Prints one JSON object per
configuration with the same keys as `libra-bench --json`.

usage: bench/torch_ref.py [--batch 64] [--threads 1] [--steps 60] [--repeats 5] [--warmup 10]
                          [--blas-threads 1] [--arch smallcnn|resnet:depth=D] [--input CxHxW]
--arch resnet:depth=D: He et al.'s CIFAR ResNet as libra builds it (3x3 convs without bias, BN,
identity shortcuts and 1x1 conv + BN projections where the shape changes, global average
pooling, one linear layer), on the images converted to --input (e.g. 3x32x32: resized
bilinearly and the gray channel repeated, once before timing, as libra converts them once).
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

def resnet(depth, c, classes, width=16):
    import torch, torch.nn as nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.b1 = nn.BatchNorm2d(cout)
            self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.b2 = nn.BatchNorm2d(cout)
            self.sc = None
            if stride != 1 or cin != cout:
                self.sc = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            y = self.b2(self.c2(torch.relu(self.b1(self.c1(x)))))
            return torch.relu(y + (self.sc(x) if self.sc is not None else x))

    n = (depth - 2) // 6
    layers = [nn.Conv2d(c, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
    cin = width
    for stage in range(3):
        for b in range(n):
            cout = width << stage
            layers.append(Block(cin, cout, 2 if stage > 0 and b == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes)]
    return nn.Sequential(*layers)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--data", default=os.environ.get("LIBRA_FMNIST_DIR", "/usr/share/datasets/fashion-mnist"))
    ap.add_argument("--blas-threads", type=int, default=1)
    ap.add_argument("--arch", default="smallcnn")
    ap.add_argument("--input", default="1x28x28")
    ap.add_argument("--flush-denormal", type=int, default=0, help="1: torch.set_flush_denormal(True)")
    a = ap.parse_args()
    if a.blas_threads > 0:  # read by OpenBLAS when torch loads it
        os.environ["OPENBLAS_NUM_THREADS"] = str(a.blas_threads)
    try:
        import torch, torch.nn as nn
    except ImportError:
        print("torch_ref: PyTorch is not installed (Debian package python3-torch)", file=sys.stderr)
        return 3
    torch.set_num_threads(a.threads)
    if a.flush_denormal:
        torch.set_flush_denormal(True)
    torch.manual_seed(0)
    x = load_idx(os.path.join(a.data, "train-images-idx3-ubyte.gz"))
    y = load_idx(os.path.join(a.data, "train-labels-idx1-ubyte.gz"))
    # uint8 kept; each batch is normalised on the fly, as libra's batcher does
    C, H, W = (int(v) for v in a.input.split("x"))
    xt = torch.from_numpy(x.copy()).unsqueeze(1)
    if (H, W) != (28, 28):
        xt = torch.cat([torch.nn.functional.interpolate(xt[i:i + 5000].float(), size=(H, W), mode="bilinear",
                                                        align_corners=False).round().clamp(0, 255).to(torch.uint8)
                        for i in range(0, xt.shape[0], 5000)])
    if C == 3:
        xt = xt.repeat(1, 3, 1, 1)
    yt = torch.from_numpy(y.astype("int64"))
    mean, std = float(xt.float().mean()) / 255.0, float(xt.float().std()) / 255.0
    if a.arch.startswith("resnet"):
        depth = int(dict(kv.split("=") for kv in a.arch.split(":")[1].split(","))["depth"]) if ":" in a.arch else 20
        net = resnet(depth, C, 10)
    else:
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
        xb = (xt[idx].float() / 255.0 - mean) / std
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
    print(json.dumps({"impl": "pytorch", "version": torch.__version__, "arch": a.arch, "input": a.input,
                      "batch": B, "threads": a.threads,
                      "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
                      "flush_denormal": a.flush_denormal,
                      "train_images_per_s": stat(tr), "eval_images_per_s": stat(ev),
                      "peak_rss_mb": rss}))
    return 0

if __name__ == "__main__":
    sys.exit(main())
