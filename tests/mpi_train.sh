#!/usr/bin/env bash
# libra-train --shards 4 across MPI ranks (registered only in a build with MPI): the parameter
# hash of metrics.json is the same without MPI at 1 and 2 threads, at 1, 2 and 4 ranks, and at
# 2 ranks of 2 threads; a run checkpointed at 2 ranks resumes at 4 (and one of 4 at 1) to the
# same bits as a run that never stopped; rank 0 alone writes; failures end the whole job with
# one message and a non-zero status, never a hang; rank counts that cannot share the shards
# are refused (exit 2).
set -uo pipefail
bin=${LIBRA_BINARY_DIR:?}/libra-train
mpirun=${LIBRA_MPIEXEC:-mpirun}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
if [[ $(id -u) -eq 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMPI_MCA_rmaps_base_oversubscribe=1 # 4 ranks on 2 cores
# every run is bounded: a hang is a failure, not a stuck suite (generous for sanitizer builds)
limit=${LIBRA_MPI_TRAIN_LIMIT:-600}
mpi() { timeout "$limit" "$mpirun" --oversubscribe -np "$@"; }
hash_of() { sed -n 's/.*"param_hash": "\([0-9a-f]*\)".*/\1/p' "$1/metrics.json"; }

fm=${LIBRA_FMNIST_DIR:-/usr/share/datasets/fashion-mnist}
[[ -r "$fm/train-images-idx3-ubyte.gz" ]] ||
  fail "Fashion-MNIST not found in $fm (install the Debian package dataset-fashion-mnist)"

# 2,000 training images, a narrow reference CNN with dropout and augmentation (both drawn by
# position in the global batch), batch 32 in 4 shards
common=(--imbalance counts:200,200,200,200,200,200,200,200,200,200 --arch smallcnn:dropout=0.25,c1=8,c2=16,fc=32
        --batch 32 --crop-pad 2 --hflip --seed 3 --shards 4 --log-every 10 --monitor none --quiet)

echo "-- one process: 1 and 2 threads"
timeout "$limit" "$bin" "${common[@]}" --steps 60 --threads 1 --save "$tmp/ref.ckpt" --out "$tmp/t1" >/dev/null 2>"$tmp/e" ||
  { cat "$tmp/e"; fail "no MPI, 1 thread"; }
ref=$(hash_of "$tmp/t1")
[[ -n "$ref" ]] || fail "metrics.json has no param_hash"
timeout "$limit" "$bin" "${common[@]}" --steps 60 --threads 2 --out "$tmp/t2" >/dev/null 2>"$tmp/e" ||
  { cat "$tmp/e"; fail "no MPI, 2 threads"; }
[[ $(hash_of "$tmp/t2") == "$ref" ]] || fail "2 threads: hash $(hash_of "$tmp/t2"), 1 thread: $ref"

for run in "1 1" "2 1" "4 1" "2 2"; do
  set -- $run
  echo "-- mpirun -np $1, $2 thread(s)"
  mpi "$1" "$bin" "${common[@]}" --steps 60 --threads "$2" --save "$tmp/k$1.ckpt" --out "$tmp/k$1t$2" \
    >"$tmp/out" 2>"$tmp/e" || { cat "$tmp/e"; fail "mpirun -np $1 --threads $2"; }
  h=$(hash_of "$tmp/k$1t$2")
  [[ "$h" == "$ref" ]] || fail "$1 ranks, $2 threads: hash $h, one process: $ref"
  grep -q "\"ranks\": $1," "$tmp/k$1t$2/metrics.json" || fail "metrics.json lacks \"ranks\": $1"
  grep -q '"shards": 4,' "$tmp/k$1t$2/metrics.json" || fail "metrics.json lacks \"shards\": 4"
  [[ -z "$(find "$tmp" -name '*.tmp*')" ]] || fail "$1 ranks left temporary files"
done

echo "-- resume at another rank count"
mpi 2 "$bin" "${common[@]}" --steps 30 --save "$tmp/half2.ckpt" >/dev/null 2>"$tmp/e" || { cat "$tmp/e"; fail "30 steps on 2 ranks"; }
mpi 4 "$bin" --resume "$tmp/half2.ckpt" --steps 60 --quiet --out "$tmp/r4" >/dev/null 2>"$tmp/e" ||
  { cat "$tmp/e"; fail "resume at 4 ranks"; }
[[ $(hash_of "$tmp/r4") == "$ref" ]] || fail "30 steps at 2 ranks + 30 at 4: hash $(hash_of "$tmp/r4"), expected $ref"
mpi 4 "$bin" "${common[@]}" --steps 30 --save "$tmp/half4.ckpt" >/dev/null 2>"$tmp/e" || { cat "$tmp/e"; fail "30 steps on 4 ranks"; }
timeout "$limit" "$bin" --resume "$tmp/half4.ckpt" --steps 60 --quiet --out "$tmp/r1" >/dev/null 2>"$tmp/e" ||
  { cat "$tmp/e"; fail "resume without MPI"; }
[[ $(hash_of "$tmp/r1") == "$ref" ]] || fail "30 steps at 4 ranks + 30 alone: hash $(hash_of "$tmp/r1"), expected $ref"

# expect CODE PATTERN cmd...: exit status CODE (not a timeout) and PATTERN in the output, once
expect() {
  local code=$1 pat=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  [[ $rc -ne 124 ]] || fail "$* hung (killed after $limit s)"
  [[ $rc -eq $code ]] || { cat "$tmp/err"; fail "$* exited $rc, expected $code"; }
  local n
  n=$(cat "$tmp/out" "$tmp/err" | grep -cF -- "$pat")
  [[ $n -ge 1 ]] || { cat "$tmp/err"; fail "$*: no '$pat' in the output"; }
}

echo "-- refusals and failures"
expect 2 "data-parallel training needs a power of two" mpi 3 "$bin" "${common[@]}" --steps 5
expect 2 "each rank needs at least one shard" mpi 2 "$bin" "${common[@]}" --shards 1 --steps 5
expect 1 "$tmp/missing.ckpt" mpi 2 "$bin" --resume "$tmp/missing.ckpt" --steps 5
# a learning rate that overflows the parameters: every rank stops at the same step
expect 1 "is first non-finite" mpi 2 "$bin" --imbalance counts:200,200,200,200,200,200,200,200,200,200 \
  --arch smallcnn:c1=8,c2=16,fc=32 --batch 32 --shards 4 --monitor none --quiet --lr 100 --optimizer sgd --steps 30
[[ -z "$(find "$tmp" -name '*.tmp*')" ]] || fail "a failed run left temporary files"
echo "mpi_train: ok"
