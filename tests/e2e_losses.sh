#!/usr/bin/env bash
# libra-losses and libra-custom-loss as a user runs them: the worked example, a loss on a CSV
# of logits compared with the PyTorch reference (tests/ref/loss_refs.h), the focal curve,
# and the errors (bad flag -> exit 2, bad CSV -> exit 1 naming file and line).
set -euo pipefail
src=${LIBRA_SOURCE_DIR:?} bin=${LIBRA_BINARY_DIR:?}
prog="$bin/libra-losses"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "e2e_losses: $*"; exit 1; }

# expect_exit CODE PATTERN CMD...: the command exits with CODE and its stderr matches PATTERN
expect_exit() {
  local want=$1 pattern=$2 rc=0
  shift 2
  "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
  [[ $rc -eq $want ]] || fail "'$*' exited $rc, expected $want: $(cat "$tmp/err")"
  grep -q -- "$pattern" "$tmp/err" || fail "'$*': stderr lacks '$pattern': $(cat "$tmp/err")"
}

# relative difference of two numbers within tol
close() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; m = b < 0 ? -b : b; if (m < 1) m = 1; exit !(d <= t * m) }'; }

echo "-- worked example"
"$prog" >"$tmp/worked"
grep -q "p_t = P(Diseased) if the label is Diseased" "$tmp/worked" || fail "worked example lacks the p_t definition"
# row 5: Diseased with P(Diseased) = 0.2: CE = -ln 0.2 = 1.609438, FL = 0.25 * 0.8^2 * CE = 0.257510
grep -qE '^ 5 .*Diseased +0\.2000 +1\.609438 +0\.257510' "$tmp/worked" || fail "row 5 wrong: $(cat "$tmp/worked")"
grep -qE '^mean +0\.706991 +0\.152465' "$tmp/worked" || fail "means wrong"
"$prog" --gamma 0 --alpha none | grep -E '^ 3 .* 1\.203973 +1\.203973' >/dev/null || fail "gamma 0 without alpha is not CE"

echo "-- --input against the PyTorch reference"
ref() { sed -n "s/^#define $1 //p" "$src/tests/ref/loss_refs.h"; }
"$prog" --loss focal:gamma=2 --input "$src/tests/ref/loss_input.csv" >"$tmp/focal.csv"
head -1 "$tmp/focal.csv" | grep -qx 'i,target,loss,dlogit_0,dlogit_1,dlogit_2,dlogit_3' || fail "bad CSV header"
[[ $(grep -c '^[0-9]' "$tmp/focal.csv") -eq 8 ]] || fail "expected 8 sample rows"
mean=$(sed -n 's/^mean,//p' "$tmp/focal.csv")
loss0=$(awk -F, '$1 == "0" { print $3 }' "$tmp/focal.csv")
close "$mean" "$(ref LREF_E2E_FOCAL_MEAN)" 1e-6 || fail "mean $mean, reference $(ref LREF_E2E_FOCAL_MEAN)"
close "$loss0" "$(ref LREF_E2E_FOCAL_LOSS0)" 1e-6 || fail "loss 0 $loss0, reference $(ref LREF_E2E_FOCAL_LOSS0)"
# a loss that needs counts, with a DRW switch, written to a file
"$prog" --loss ldam:drw=0.8 --input "$src/tests/ref/loss_input.csv" --counts 600,150,40,10 \
        --step 90 --total-steps 100 --out "$tmp/ldam.csv"
grep -q '^mean,' "$tmp/ldam.csv" || fail "--out file lacks the mean line"
[[ ! -e "$tmp/ldam.csv.tmp" ]] || fail "temporary file left behind"

echo "-- curve"
"$prog" --curve --svg "$tmp/curve.svg" >"$tmp/curve.csv"
head -1 "$tmp/curve.csv" | grep -qx 'p_t,gamma,loss,modulating_factor' || fail "curve header"
# gamma 2 at p_t = 0.5: 0.25 * ln 2 = 0.1732868
v=$(awk -F, '$1 == "0.500" && $2 == "2" { print $3 }' "$tmp/curve.csv")
close "$v" 0.17328680 1e-6 || fail "curve value $v at p_t 0.5, gamma 2"
grep -q '</svg>' "$tmp/curve.svg" || fail "svg incomplete"

echo "-- errors"
expect_exit 2 "unrecognized option" "$prog" --bogus
expect_exit 2 "--gamma: .x. is not a number" "$prog" --gamma x
expect_exit 2 "unknown key 'gama'" "$prog" --loss focal:gama=2 --input "$src/tests/ref/loss_input.csv"
expect_exit 2 "counts" "$prog" --loss ldam --input "$src/tests/ref/loss_input.csv"
printf 'target,logit_0,logit_1\n0,1.5,-2\n1,0.5\n' >"$tmp/cols.csv"
expect_exit 1 "cols.csv:3:" "$prog" --loss ce --input "$tmp/cols.csv"
printf '0,1.5,-2\n1,0.5,abc\n' >"$tmp/num.csv"
expect_exit 1 "num.csv:2: column 3" "$prog" --loss ce --input "$tmp/num.csv"
printf '0,1.5,-2\n2,0.5,1\n' >"$tmp/target.csv"
expect_exit 1 "target.csv:2: target 2 is out of range" "$prog" --loss ce --input "$tmp/target.csv"
expect_exit 1 "cannot open" "$prog" --loss ce --input "$tmp/missing.csv"

echo "-- libra-custom-loss"
"$bin/libra-custom-loss" >"$tmp/custom" || fail "libra-custom-loss failed: $(cat "$tmp/custom")"
grep -q "all checks passed" "$tmp/custom" || fail "libra-custom-loss did not pass"
echo "e2e_losses: ok"
