#!/bin/sh
# libra's SMOTE against imbalanced-learn's on the same rows: runs libra-bench-smote and
# bench/smote_ref.py in alternation (libra, imblearn, libra, ...) for each thread count, so
# both see the same machine load, and prints per configuration the medians (min-max) over the
# rounds of each round's median, imblearn's best round (the fastest round median of any dtype
# it was given) and how many times faster libra's median is than imblearn's: paired (round i
# against round i, imblearn's fastest dtype, median and min-max over the rounds) and against
# imblearn's best round.
#
# The rows: libra-bench-smote --dump writes the training split it times (Fashion-MNIST,
# longtail:100 by default, the split a training run sees) as .npy files, and smote_ref.py
# reads exactly those. Both make every class up to the largest, with k neighbours.
#
# usage: bench/smote_compare.sh [BUILD_DIR]   (default: ../build next to this script)
#   env: THREADS="1 2" ROUNDS=5 REPEATS=5 K=5 DTYPES="uint8,float64,float32"
#        DATA_FLAGS="--imbalance longtail:100" (any libra data flags)
#        PYTHON=/usr/bin/python3  BENCH=path/to/libra-bench-smote  OUT=dir for the rows and JSON lines
# Threads: libra runs with --threads T and OpenBLAS at 1 thread (its programs always keep it
# there); imblearn with OPENBLAS_NUM_THREADS=T and OMP_NUM_THREADS=T (scikit-learn's neighbour
# search runs on OpenMP or on OpenBLAS, depending on the dtype).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
bench=${BENCH:-$build/libra-bench-smote}
python=${PYTHON:-/usr/bin/python3}
threads=${THREADS:-"1 2"}
rounds=${ROUNDS:-5}
repeats=${REPEATS:-5}
k=${K:-5}
dtypes=${DTYPES:-uint8,float64,float32}
data_flags=${DATA_FLAGS:---imbalance longtail:100}
out=${OUT:-$(mktemp -d)}

[ -x "$bench" ] || { echo "smote_compare.sh: $bench not found (build the project, or pass BUILD_DIR)" >&2; exit 2; }
have_ref=1
if ! "$python" -c "import imblearn, numpy, threadpoolctl" 2>/dev/null; then
    echo "smote_compare.sh: imblearn not importable by $python (Debian: apt install python3-imblearn); libra only" >&2
    have_ref=0
fi

# shellcheck disable=SC2086  # DATA_FLAGS is a list of flags
"$bench" $data_flags --sampler "smote:k=$k" --path pixels --repeats 1 --dump "$out/rows" > /dev/null
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -n), load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# smote:k=$k on $data_flags; $rounds rounds x $repeats repeats; imblearn dtypes $dtypes"
for t in $threads; do
    : > "$out/libra-t$t.jsonl"
    : > "$out/imblearn-t$t.jsonl"
    r=0
    while [ "$r" -lt "$rounds" ]; do
        # shellcheck disable=SC2086
        OPENBLAS_NUM_THREADS=1 "$bench" $data_flags --sampler "smote:k=$k" --threads "$t" --repeats "$repeats" --json \
            >> "$out/libra-t$t.jsonl"
        if [ "$have_ref" = 1 ]; then
            OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t "$python" "$here/smote_ref.py" --rows "$out/rows" --k "$k" \
                --threads "$t" --repeats "$repeats" --dtype "$dtypes" >> "$out/imblearn-t$t.jsonl"
        fi
        r=$((r + 1))
    done
done

"$python" - "$out" "$threads" <<'EOF'
import json, os, statistics, sys
out, threads = sys.argv[1], sys.argv[2].split()
def load(path):
    return [json.loads(l) for l in open(path) if l.strip()] if os.path.exists(path) else []
def rounds(rows, path):  # each round's median, in round order
    return [r["ms"]["median"] for r in rows if r["path"] == path]
def agg(v): return (statistics.median(v), min(v), max(v)) if v else None
def fmt(s): return "%8.1f (%.1f-%.1f)" % s if s else "%22s" % "-"
print("%-3s %-16s %-24s %-14s %-22s %-10s" % ("thr", "what", "ms: median (min-max)", "rows -> out", "x faster: paired", "vs best"))
for t in threads:
    L, I = load(f"{out}/libra-t{t}.jsonl"), load(f"{out}/imblearn-t{t}.jsonl")
    ipaths = list(dict.fromkeys(r["path"] for r in I))
    istats = {p: agg(rounds(I, p)) for p in ipaths}
    fastest = min(ipaths, key=lambda p: istats[p][0]) if ipaths else None
    best = min(r["ms"]["median"] for r in I) if I else None
    best_of = min(I, key=lambda r: r["ms"]["median"])["path"] if I else "-"
    for p in ipaths:
        r0 = next(r for r in I if r["path"] == p)
        print("%-3s %-16s %-24s %-14s" % (t, "imblearn " + p, fmt(istats[p]), "%d -> %d" % (r0["rows"], r0["rows_out"])))
    for p in dict.fromkeys(r["path"] for r in L):
        rows = [r for r in L if r["path"] == p]
        v = rounds(L, p)
        paired, vs = "-", "-"
        if fastest:
            q = [a / b for a, b in zip(rounds(I, fastest), v)]
            paired = "%.2f (%.2f-%.2f)" % (statistics.median(q), min(q), max(q))
            vs = "%.2f" % (best / statistics.median(v))
        print("%-3s %-16s %-24s %-14s %-22s %-10s" % (t, "libra " + p, fmt(agg(v)), "%d -> %d" % (rows[0]["rows"],
              rows[0]["rows_out"]), paired, vs))
        if len(set(r["hash"] for r in rows)) != 1:
            print("# WARNING: libra %s made different results in different rounds" % p)
        if I and any(r["rows_out"] != rows[0]["rows_out"] or r["rows"] != rows[0]["rows"] for r in I):
            print("# WARNING: imblearn made a resampled set of another size than libra's")
    if fastest:
        print("#   %s thread%s: imblearn's fastest dtype %s; its best round %.1f ms (%s)" % (t, "s" if t != "1" else "",
              fastest, best, best_of))
print("# libra hash:", ", ".join(sorted(set("%s %s" % (r["path"], r["hash"]) for t in threads
                                              for r in load(f"{out}/libra-t{t}.jsonl")))))
print("# raw JSON lines and the rows:", out)
EOF
