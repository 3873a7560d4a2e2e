#!/usr/bin/env bash
# The longest C functions of the tree, "lines file:line name", longest first.
#   usage: scripts/function_lengths.sh [N] [paths...]   (default: 10, src examples bench)
# A function is a line at column 0 ending in ')' followed by '{' at column 0, up to the '}'
# at column 0 (the house style; docs/architecture.md).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10}
shift || true
paths=("${@:-src examples bench}")
# shellcheck disable=SC2068
find ${paths[@]} -name '*.c' -print0 | xargs -0 awk '
FNR == 1 { infn = 0; prev = ""; sig = "" }
{
  if (!infn && $0 ~ /^\{/ && prev ~ /\)[ \t]*$/ && sig != "") { infn = 1; start = sigline; name = sig }
  if (infn && $0 ~ /^\}/) {
    sub(/\(.*/, "", name); k = split(name, w, /[ \t*]+/)
    printf "%d %s:%d %s\n", FNR - start + 1, FILENAME, start, w[k]; infn = 0
  }
  if (!infn && $0 ~ /^[A-Za-z_][A-Za-z0-9_ \t\*]*\(/) { sig = $0; sigline = FNR }
  prev = $0
}' | sort -rn | head -n "$n"
