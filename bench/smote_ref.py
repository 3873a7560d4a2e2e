#!/usr/bin/python3
"""imbalanced-learn reference for libra-bench-smote: SMOTE(k_neighbors=K, random_state=0)
.fit_resample(X, y) on the very rows libra times, which `libra-bench-smote --dump DIR` writes
(DIR/smote_x.npy: uint8 [n, dim], DIR/smote_y.npy: int64 [n]). X is given as each --dtype:
uint8 as it is (imblearn keeps the dtype: scikit-learn's neighbour search converts the rows to
float64 inside, and the synthetic rows come back truncated to uint8, like libra's pixels path),
float64 and float32 (converted once, before timing; the result is of that dtype). Each round, after one untimed
warm-up, times one whole fit_resample (neighbours, draws, the new arrays of originals and
synthetic rows), with sampling_strategy='auto' (every class up to the largest).

Prints one JSON object per dtype, keys as libra-bench-smote --json ("path" is the dtype).

usage: bench/smote_ref.py --rows DIR [--k 5] [--dtype uint8,float64,float32] [--threads 1] [--repeats 7]
--threads: OpenBLAS's and OpenMP's threads (scikit-learn's neighbour search runs on OpenMP),
set before numpy loads and again through threadpoolctl.
"""
import argparse, json, os, statistics, sys, time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", required=True, help="folder with smote_x.npy and smote_y.npy (libra-bench-smote --dump)")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--dtype", default="uint8,float64,float32")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=7)
    a = ap.parse_args()
    if a.repeats < 1 or a.threads < 1 or a.k < 1:
        print("smote_ref.py: --repeats, --threads and --k must be >= 1", file=sys.stderr)
        return 2
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):  # read when numpy / sklearn load them
        os.environ[var] = str(a.threads)
    try:
        import numpy as np
        import imblearn
        from imblearn.over_sampling import SMOTE
        from threadpoolctl import threadpool_limits
    except ImportError as e:
        print("smote_ref.py: %s (Debian: apt install python3-imblearn)" % e, file=sys.stderr)
        return 3
    paths = [os.path.join(a.rows, f) for f in ("smote_x.npy", "smote_y.npy")]
    for p in paths:
        if not os.path.exists(p):
            print("smote_ref.py: --rows %s: no %s (write it with libra-bench-smote --dump %s)" % (a.rows, p, a.rows),
                  file=sys.stderr)
            return 2
    X8, y = np.load(paths[0]), np.load(paths[1])
    if X8.ndim != 2 or y.shape != (X8.shape[0],):
        print("smote_ref.py: --rows %s: X %s and y %s do not match" % (a.rows, X8.shape, y.shape), file=sys.stderr)
        return 2
    with threadpool_limits(limits=a.threads):
        for dt in a.dtype.split(","):
            X = X8.astype(dt)
            times = []
            for r in range(a.repeats + 1):  # round 0 warms up
                t0 = time.perf_counter()
                Xr, yr = SMOTE(k_neighbors=a.k, random_state=0).fit_resample(X, y)
                t = time.perf_counter() - t0
                if r > 0:
                    times.append(t)
                del Xr
            print(json.dumps({"bench": "smote", "impl": "imblearn", "version": imblearn.__version__, "path": dt,
                              "sampler": "SMOTE(k_neighbors=%d)" % a.k, "threads": a.threads, "rows": int(X.shape[0]),
                              "dim": int(X.shape[1]), "rows_out": int(yr.shape[0]),
                              "counts_out": np.bincount(yr).tolist(), "repeats": a.repeats,
                              "ms": {"median": round(1e3 * statistics.median(times), 2),
                                     "min": round(1e3 * min(times), 2), "max": round(1e3 * max(times), 2)}}))
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
