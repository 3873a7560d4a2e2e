#!/usr/bin/env bash
# Nothing is skipped in silence: an image folder with a corrupt PNG, an empty file, a text
# file named .png and a class of one image. Every program says so on stderr even with
# --quiet, its JSON carries the same warnings, --strict makes the bad files an error, the
# class without test images is left out of the averages (classes_scored), and a study that
# would tune on an empty validation split is refused.
set -uo pipefail
bin=${LIBRA_BINARY_DIR:?}
src=${LIBRA_SOURCE_DIR:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "e2e_warnings: $*" >&2; exit 1; }
has() { grep -qF -- "$2" "$1" || fail "$1 lacks '$2': $(head -c 3000 "$1")"; }

data="$tmp/shapes"
cp -r "$src/datasets/sample-folder" "$data"
head -c 100 "$data/circle/circle_000.png" >"$data/circle/cut.png"   # a PNG cut short
: >"$data/circle/empty.png"                                          # zero bytes
echo "not an image" >"$data/square/notes.png"                        # text named .png
mkdir "$data/lonely"
cp "$data/triangle/triangle_000.png" "$data/lonely/only.png"         # a class of one image
common=(--data "folder:$data" --arch linear --steps 3 --quiet)

echo "-- libra-train"
"$bin/libra-train" "${common[@]}" --out "$tmp/run" --save "$tmp/m.ckpt" >/dev/null 2>"$tmp/err" ||
  fail "libra-train failed: $(cat "$tmp/err")"
has "$tmp/err" "3 image files skipped"
for f in cut.png empty.png notes.png; do has "$tmp/err" "$f"; done
has "$tmp/err" "class 'lonely' has no test image"
has "$tmp/err" "over the 3 classes that have test images"
/usr/bin/env python3 - "$tmp/run/metrics.json" <<'EOF' || fail "metrics.json does not carry the warnings"
import json, sys
m = json.load(open(sys.argv[1]))
assert m["skipped_files"] == 3, m["skipped_files"]
w = m["data_warnings"]
assert w["count"] == 5 and len(w["messages"]) == 5, w  # + no validation image for lonely
assert any("lonely" in s for s in w["messages"]) and any("notes.png" in s for s in w["messages"])
assert m["n_classes"] == 4 and m["classes_scored"] == 3, (m["n_classes"], m["classes_scored"])
assert m["per_class_recall"][m["class_names"].index("lonely")] == 0
EOF

echo "-- --strict"
"$bin/libra-train" "${common[@]}" --strict 2>"$tmp/err" >/dev/null
rc=$?
[[ $rc -eq 1 ]] || fail "--strict with bad files exited $rc, expected 1"
grep -qE "cut.png|empty.png|notes.png" "$tmp/err" || fail "--strict error names no file: $(cat "$tmp/err")"

echo "-- libra-evaluate"
"$bin/libra-evaluate" --model "$tmp/m.ckpt" --out "$tmp/eval.json" >/dev/null 2>"$tmp/err" ||
  fail "libra-evaluate failed: $(cat "$tmp/err")"
has "$tmp/err" "3 image files skipped"
has "$tmp/eval.json" '"skipped_files": 3'
has "$tmp/eval.json" '"classes_scored": 3'

echo "-- libra-compare"
"$bin/libra-compare" "${common[@]}" --strategies ce --seeds 1 --out "$tmp/study" 2>"$tmp/err" >/dev/null ||
  fail "libra-compare failed: $(cat "$tmp/err")"
has "$tmp/err" "3 image files skipped"
has "$tmp/err" "class 'lonely' has no test image"
/usr/bin/env python3 - "$tmp/study/results.json" <<'EOF' || fail "results.json does not carry the warnings"
import json, sys
d = json.load(open(sys.argv[1]))["dataset"]
assert d["skipped_files"] == 3 and d["warnings"]["count"] == 5, d
EOF
has "$tmp/study/report.html" "5 warnings about the data"
has "$tmp/study/report.html" "notes.png"

echo "-- tuning needs a validation split"
for s in "ce+posthoc" "focal:gamma=1|2"; do
  "$bin/libra-compare" "${common[@]}" --val-fraction 0 --strategies "$s" --seeds 1 --out "$tmp/t" \
    2>"$tmp/err" >/dev/null
  rc=$?
  [[ $rc -eq 1 ]] || fail "$s with no validation split exited $rc, expected 1"
  has "$tmp/err" "no validation image"
  [[ -e "$tmp/t/results.json" ]] && fail "$s wrote results without a validation split"
done
"$bin/libra-compare" "${common[@]}" --val-fraction 0.2 --strategies "ce+posthoc" --seeds 1 --out "$tmp/t2" \
  2>"$tmp/err" >/dev/null || fail "ce+posthoc with a validation split failed: $(cat "$tmp/err")"
echo "e2e_warnings: ok"
