#!/bin/sh
# Runs libra-bench and bench/torch_ref.py in alternation (libra, PyTorch, libra, ...) for
# each configuration, so both see the same machine load, and prints per configuration the
# medians (min-max) over the rounds, PyTorch's best process (it is bimodal: a new process
# trains either fast or at a third of that speed, so its median flatters libra) and the
# ratios of libra's median to PyTorch's median (paired rounds) and to its best process.
# Each round starts one PyTorch process per FLUSH setting (torch.set_flush_denormal off/on);
# the best is over all of them, and says which setting it had.
#
# usage: bench/compare.sh [BUILD_DIR]   (default: ../build next to this script)
#   env: BATCHES="32 64 128" THREADS="1 2" ROUNDS=6 STEPS=40 REPEATS=3 FLUSH="0 1"
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
rounds=${ROUNDS:-6}
flush=${FLUSH:-"0 1"}
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
                for fl in $flush; do
                    "$python" "$here/torch_ref.py" --arch "$arch" --input "$input" --batch "$b" --threads "$t" --steps "$steps" --repeats "$repeats" \
                        --flush-denormal "$fl" >> "$out/torch-b$b-t$t.jsonl"
                done
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
# median over the rounds (min-max); PyTorch's rounds are those of the first FLUSH setting
def paired(L, T, key):
    v = [a[key]["median"] / b[key]["median"] for a, b in zip(L, T)]
    return "%.2f (%.2f-%.2f)" % (statistics.median(v), min(v), max(v)) if v else "-"
# PyTorch's best process: the largest per-process median of any setting, and which setting
def best(T, key):
    if not T: return None, "-"
    r = max(T, key=lambda r: r[key]["median"])
    return r[key]["median"], "fd%d" % r.get("flush_denormal", 0)
print("%-6s %-3s %-5s %-21s %-21s %-14s %-16s %-11s %8s %8s" % ("batch", "thr", "what", "libra img/s", "pytorch img/s",
      "pytorch best", "ratio (median)", "ratio best", "libraMB", "torchMB"))
for b in batches:
    for t in threads:
        L, T = load(f"{out}/libra-b{b}-t{t}.jsonl"), load(f"{out}/torch-b{b}-t{t}.jsonl")
        T0 = [r for r in T if r.get("flush_denormal", 0) == T[0].get("flush_denormal", 0)] if T else []
        for what, key in (("train", "train_images_per_s"), ("eval", "eval_images_per_s")):
            l, p = agg(L, key), agg(T, key)
            ratio = paired(L, T0, key)
            bv, bs = best(T, key)
            rb = "%.2f" % (l[0] / bv) if l and bv else "-"
            bt = "%.0f %s" % (bv, bs) if bv else "-"
            lm = "%.0f" % max(r["peak_rss_mb"] for r in L) if L else "-"
            tm = "%.0f" % max(r["peak_rss_mb"] for r in T) if T else "-"
            print("%-6s %-3s %-5s %-21s %-21s %-14s %-16s %-11s %8s %8s" % (b, t, what, fmt(l), fmt(p), bt, ratio, rb, lm, tm))
print("# raw JSON lines:", out)
EOF
