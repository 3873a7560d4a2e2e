#!/usr/bin/env bash
# Your own data end to end: the CSV example of docs/data.md (scripts/make_csv_example.py, from
# Fashion-MNIST: two imbalanced classes, mixed sizes and modes, a split column, two bad rows)
# trained, evaluated from another folder, refused against other classes, resumed, and studied
# with a per-class loss parameter given by class name.
set -uo pipefail
bin=${LIBRA_BINARY_DIR:?}
src=${LIBRA_SOURCE_DIR:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "e2e_own_data: $*" >&2; exit 1; }
has() { grep -qF -- "$2" "$1" || fail "$1 lacks '$2': $(head -c 3000 "$1")"; }
fm=${LIBRA_FMNIST_DIR:-/usr/share/datasets/fashion-mnist}
cd "$tmp" || exit 1
python3 "$src/scripts/make_csv_example.py" shoes "$fm" >/dev/null || fail "make_csv_example.py failed"
data=(--data "csv:shoes/labels.csv,root=shoes/images,split=fold" --arch smallcnn:c1=8,c2=8,fc=16)

echo "-- libra-train on the CSV"
"$bin/libra-train" "${data[@]}" --steps 30 --save m.ckpt --out run >out.txt 2>err.txt || fail "libra-train: $(cat err.txt)"
has err.txt "validation: the 66 images the source marks as validation"
has err.txt "image size 28x28: the most common of 2 sizes among the training images (308 of 462)"
has err.txt "channels 1 (gray): 308 of the 462 training images are gray"
has err.txt "resized 220 of 660 images to 28x28"
has err.txt "train Ankle boot 42, Sneaker 420 (462)"
has err.txt "2 image files skipped"
has err.txt "labels.csv:662: shoes/images/sneaker_missing.png: cannot read it"
has err.txt "labels.csv:663: shoes/images/notes.png: not a readable image"
has run/metrics.json '"class_names": ["Ankle boot", "Sneaker"]'

echo "-- libra-evaluate from another folder (the checkpoint's data paths are absolute)"
mkdir elsewhere
(cd elsewhere && "$bin/libra-evaluate" --model ../m.ckpt >eval.json 2>err.txt) || fail "libra-evaluate elsewhere: $(cat elsewhere/err.txt)"
has elsewhere/eval.json '"class_names": ["Ankle boot", "Sneaker"]'
has elsewhere/eval.json '"n": 132'

echo "-- other classes are refused, naming both lists"
"$bin/libra-evaluate" --model m.ckpt --classes "Sneaker,Ankle boot" >/dev/null 2>err.txt
[[ $? -eq 1 ]] || fail "evaluate with the classes reordered did not exit 1"
has err.txt "the model was trained on the classes Ankle boot, Sneaker but the data has Sneaker, Ankle boot"
"$bin/libra-evaluate" --model m.ckpt --data "folder:$src/datasets/sample-folder" --size 28x28 --channels 1 >/dev/null 2>err.txt
[[ $? -eq 1 ]] || fail "evaluate on other classes did not exit 1"
has err.txt "but the data has circle, square, triangle"
"$bin/libra-train" --resume m.ckpt --steps 40 --classes "Sneaker,Ankle boot" --save m2.ckpt --quiet >/dev/null 2>err.txt
[[ $? -eq 1 ]] || fail "resume with the classes reordered did not exit 1"
has err.txt "the checkpoint was trained with classes '', this run asks for 'Sneaker,Ankle boot'"
"$bin/libra-train" --resume m.ckpt --steps 40 --save m2.ckpt --quiet >/dev/null 2>err.txt || fail "resume: $(cat err.txt)"

echo "-- a study with alpha given by class name, tuned on the source's validation split"
"$bin/libra-compare" "${data[@]}" --steps 30 --seeds 1 --jobs 2 --quiet --out study --target-recall 0.9 \
  --strategies "ce;focal:gamma=2,alpha=Sneaker:0.25,Ankle boot:0.75;focal:gamma=0|2+posthoc" >/dev/null 2>err.txt ||
  fail "libra-compare: $(cat err.txt)"
has study/results.json '{"name": "Ankle boot", "train": 42, "val": 6, "test": 12}'
has study/results.json '"strategy": "focal:gamma=2,alpha=Sneaker:0.25,Ankle boot:0.75"'
# a binary task: the rare class's PR and ROC curves and the operating point for recall 0.9
has study/results.json '"operating_point": {"class": 0, "target_recall": 0.899999976'
has study/results.json '"pr": [[0, 1], '
has study/report.html "the test precision-recall and ROC curves of the rare class, 'Ankle boot'"
has study/report.html "reaches recall 0.90 on the validation split"
has study/runs/settings.txt "target_recall=0.9"
python3 - study/results.json <<'PY' || fail "operating points do not follow from the curves"
import json, sys
d = json.load(open(sys.argv[1]))
for r in d["runs"]:
    op, pr, roc = r["operating_point"], r["curves"]["pr"], r["curves"]["roc"]
    assert len(pr) == len(roc) and 2 <= len(pr) <= 101, len(pr)
    assert pr[-1][0] == 1 and roc[-1] == [1, 1] and roc[0] == [0, 0]   # the lowest threshold takes all
    assert op["val_recall"] >= op["target_recall"]
    assert all(0 <= v <= 1 for v in (op["test_recall"], op["test_precision"]))
PY
echo "e2e_own_data: ok"
