#!/usr/bin/env bash
# libra-compare's sweep over imbalance profiles and the oracle: --imbalance 'none|longtail:20' runs
# one study per profile in OUT/<profile>/, and OUT gets the sweep's results.json (every record
# with its profile, predictions paths that resolve from OUT), results.csv (the profile first),
# summary.csv (intervals, gap_recovered: 0 for ce and 1 for the oracle by definition) and
# report.html; --resume reuses every run; a bad list is a usage error naming it.
set -uo pipefail
bin=${LIBRA_BINARY_DIR:?}/libra-compare
src=${LIBRA_SOURCE_DIR:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
cd "$src"
strip() { grep -v -E '"(wall_seconds|images_per_sec|rank|ranks|jobs)"' "$1"; }

args=(--preset sample-folder --arch linear --steps 30 --seeds 2 --strategies "ce;oracle;logit_adjust")
"$bin" "${args[@]}" --imbalance "none|longtail:20" --jobs 2 --out "$tmp/sw" >"$tmp/o" 2>"$tmp/e" ||
  { cat "$tmp/e"; fail "the sweep"; }
for f in results.json results.csv summary.csv report.html none/results.json longtail_20/results.json \
         longtail_20/report.html longtail_20/summary.csv; do
  [[ -s "$tmp/sw/$f" ]] || fail "no $f"
done
grep -q "^sweep:   $tmp/sw/results.json" "$tmp/o" || { cat "$tmp/o"; fail "the sweep's path is not printed"; }
grep -q "^sweep: balanced accuracy (gap recovered) per profile" "$tmp/e" || { cat "$tmp/e"; fail "no sweep table"; }
grep -q '"format": "libra-sweep"' "$tmp/sw/results.json" || fail "results.json is not a sweep's"
grep -q '"sweep": \["none", "longtail:20"\]' "$tmp/sw/results.json" || fail "results.json does not list the profiles"
[[ $(grep -c '"profile": "longtail:20"' "$tmp/sw/longtail_20/results.json") -ge 6 ]] ||
  fail "the records of longtail:20 do not carry their profile"
# every predictions path of the sweep's file resolves from OUT
n=0
while read -r p; do
  [[ -s "$tmp/sw/$p" ]] || fail "predictions file $p (named in the sweep's results.json) is not in $tmp/sw"
  n=$((n + 1))
done < <(grep -o '"predictions": "[^"]*"' "$tmp/sw/results.json" | sed 's/.*: "//; s/"$//')
[[ $n -eq 12 ]] || fail "the sweep's results.json names $n predictions files, expected 12 (2 profiles x 3 x 2 seeds)"
# results.csv: the profile first, every run of both profiles
head -1 "$tmp/sw/results.csv" | grep -q "^profile,strategy,seed,variant," || fail "results.csv header"
[[ $(grep -c "^none,oracle,[12],raw," "$tmp/sw/results.csv") -eq 2 ]] || fail "results.csv lacks the oracle of none"
[[ $(grep -c "^longtail:20,ce,[12],raw," "$tmp/sw/results.csv") -eq 2 ]] || fail "results.csv lacks ce of longtail:20"
# summary.csv: gap_recovered (the last field) is 0 for ce and 1 for the oracle
tr -d '\r' <"$tmp/sw/summary.csv" >"$tmp/summary.txt" # CSV rows end in CRLF (RFC 4180)
grep -q "^longtail:20,ce,raw,2,.*,0$" "$tmp/summary.txt" || { cat "$tmp/summary.txt"; fail "ce's gap is not 0"; }
grep -q "^longtail:20,oracle,raw,2,.*,1$" "$tmp/summary.txt" || fail "the oracle's gap is not 1"
# the oracle of the folder (200/60/20 images): balanced at the same size, capped where triangle has fewer
grep -q '"note": "74 images per class where the source has them (138 in all, against the 224 images none kept); capped where the source has fewer: .square. has only 48, .triangle. has only 16"' \
  "$tmp/sw/none/results.json" || { grep -A3 '"oracle"' "$tmp/sw/none/results.json"; fail "the oracle's note"; }
grep -q '"ci95": \[' "$tmp/sw/none/results.json" || fail "no ci95 in a profile's results.json"
grep -q 'id="sweep"' "$tmp/sw/report.html" || fail "the sweep's report has no plot"
grep -q 'href="longtail_20/report.html"' "$tmp/sw/report.html" || fail "the sweep's report does not link a profile's"

# --resume: nothing runs again, the same results
cp "$tmp/sw/results.json" "$tmp/first.json"
"$bin" "${args[@]}" --imbalance "none|longtail:20" --jobs 2 --resume --out "$tmp/sw" >/dev/null 2>"$tmp/e" ||
  { cat "$tmp/e"; fail "--resume"; }
[[ $(grep -c "finished runs reused" "$tmp/e") -eq 2 ]] || { cat "$tmp/e"; fail "--resume did not reuse both profiles' runs"; }
diff <(strip "$tmp/first.json") <(strip "$tmp/sw/results.json") >/dev/null || fail "--resume changed the sweep's results"

# bad lists: exit 2, naming the problem; nothing is written
for bad in "longtail:20|longtail:20" "longtail:20|20" "longtail:20|" "|none" "50|longtail:20" "longtail:0.5|none" \
           "longtail:20|sqrt:2" "longtail:20|0.5"; do
  "$bin" "${args[@]}" --imbalance "$bad" --out "$tmp/bad" >/dev/null 2>"$tmp/e"
  rc=$?
  [[ $rc -eq 2 ]] || { cat "$tmp/e"; fail "--imbalance '$bad': exit $rc, expected 2"; }
  grep -q -- "--imbalance" "$tmp/e" || { cat "$tmp/e"; fail "--imbalance '$bad': the message does not name the flag"; }
  [[ ! -e "$tmp/bad" ]] || fail "--imbalance '$bad' left $tmp/bad"
done
# the short form: numbers continue the profile before them; --plan plans each profile, writes nothing
"$bin" "${args[@]}" --imbalance "longtail:20|40" --plan --out "$tmp/plan" >"$tmp/plan.txt" 2>"$tmp/e" ||
  { cat "$tmp/e"; fail "--plan of a sweep"; }
grep -q "== imbalance longtail:20 (1 of 2)" "$tmp/e" && grep -q "== imbalance longtail:40 (2 of 2) -> $tmp/plan/longtail_40" "$tmp/e" ||
  { cat "$tmp/e"; fail "'longtail:20|40' is not two long tails"; }
[[ $(grep -c "^phase 1: 6 jobs" "$tmp/plan.txt") -eq 2 ]] || { cat "$tmp/plan.txt"; fail "--plan of a sweep: two plans"; }
[[ ! -e "$tmp/plan" ]] || fail "--plan of a sweep left $tmp/plan"
# one split takes one profile: libra-train says so
"${LIBRA_BINARY_DIR}/libra-train" --preset sample-folder --arch linear --steps 2 --imbalance "none|longtail:20" \
  --out "$tmp/t" >/dev/null 2>"$tmp/e"
rc=$?
[[ $rc -ne 0 ]] || fail "libra-train took a '|' list of profiles"
grep -q "sweep" "$tmp/e" || { cat "$tmp/e"; fail "libra-train's message does not say what '|' is for"; }
echo "1 passed, 0 failed"
