#!/bin/sh
# Runs libra-bench and bench/torch_ref.py in alternation (libra, PyTorch, libra, ...) for
# each configuration, so both see the same machine load, and prints per configuration the
# medians (min-max) over the rounds and the ratio libra / PyTorch.
#
# usage: bench/compare.sh [BUILD_DIR]   (default: ../build next to this script)
#   env: BATCHES="32 64 128" THREADS="1 2" ROUNDS=5 STEPS=40 REPEATS=3
#        ARCH=smallcnn INPUT=1x28x28 (e.g. ARCH=resnet:depth=20 INPUT=3x32x32: both sides build it)
#        PYTHON=/usr/bin/python3  BENCH=path/to/libra-bench  OUT=dir for the raw JSON lines
# Both programs inherit this shell's environment (OPENBLAS_CORETYPE etc.): to compare
# without them, run  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE bench/compare.sh
# PyTorch is skipped, with a message, when it is not installed.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
bench=${BENCH:-$build/libra-bench}
python=${PYTHON:-/usr/bin/python3}
batches=${BATCHES:-"32 64 128"}
threads=${THREADS:-"1 2"}
rounds=${ROUNDS:-5}
steps=${STEPS:-40}
repeats=${REPEATS:-3}
out=${OUT:-$(mktemp -d)}
arch=${ARCH:-smallcnn}
input=${INPUT:-1x28x28}

[ -x "$bench" ] || { echo "compare.sh: $bench not found (build the project, or pass BUILD_DIR)" >&2; exit 2; }
have_torch=1
if ! "$python" -c "import torch" 2>/dev/null; then
    echo "compare.sh: PyTorch not importable by $python (Debian: apt install python3-torch); libra only" >&2
    have_torch=0
fi

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -n), load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $arch on $input; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-unset} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE-unset}; $rounds rounds x $repeats repeats x $steps steps"
for b in $batches; do
    for t in $threads; do
        : > "$out/libra-b$b-t$t.jsonl"
        : > "$out/torch-b$b-t$t.jsonl"
        r=0
        while [ "$r" -lt "$rounds" ]; do
            "$bench" --json --arch "$arch" --input "$input" --batch "$b" --threads "$t" --steps "$steps" --repeats "$repeats" \
                >> "$out/libra-b$b-t$t.jsonl"
            if [ "$have_torch" = 1 ]; then
                "$python" "$here/torch_ref.py" --arch "$arch" --input "$input" --batch "$b" --threads "$t" --steps "$steps" --repeats "$repeats" \
                    >> "$out/torch-b$b-t$t.jsonl"
            fi
            r=$((r + 1))
        done
    done
done

# Each round contributes its median; the table shows the median of those (min-max).
"$python" - "$out" "$batches" "$threads" <<'EOF'
import json, os, statistics, sys
out, batches, threads = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
def load(path):
    if not os.path.exists(path): return []
    return [json.loads(l) for l in open(path) if l.strip()]
def agg(rows, key):
    v = [r[key]["median"] for r in rows]
    return (statistics.median(v), min(v), max(v)) if v else None
def fmt(s): return "%7.0f (%.0f-%.0f)" % s if s else "%19s" % "-"
# ratio: libra's round i over PyTorch's round i (run back to back, so under the same load),
# median over the rounds (min-max)
def paired(L, T, key):
    v = [a[key]["median"] / b[key]["median"] for a, b in zip(L, T)]
    return "%.2f (%.2f-%.2f)" % (statistics.median(v), min(v), max(v)) if v else "-"
print("%-6s %-3s %-5s %-21s %-21s %-18s %8s %8s" % ("batch", "thr", "what", "libra img/s", "pytorch img/s", "ratio", "libraMB", "torchMB"))
for b in batches:
    for t in threads:
        L, T = load(f"{out}/libra-b{b}-t{t}.jsonl"), load(f"{out}/torch-b{b}-t{t}.jsonl")
        for what, key in (("train", "train_images_per_s"), ("eval", "eval_images_per_s")):
            l, p = agg(L, key), agg(T, key)
            ratio = paired(L, T, key)
            lm = "%.0f" % max(r["peak_rss_mb"] for r in L) if L else "-"
            tm = "%.0f" % max(r["peak_rss_mb"] for r in T) if T else "-"
            print("%-6s %-3s %-5s %-21s %-21s %-18s %8s %8s" % (b, t, what, fmt(l), fmt(p), ratio, lm, tm))
print("# raw JSON lines:", out)
EOF
