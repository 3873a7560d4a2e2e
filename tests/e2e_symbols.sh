#!/usr/bin/env bash
# The library exports what include/libra declares and nothing else: every global symbol of
# libra.a is either declared in a public header (lb_...) or marked internal (lb__...).
set -uo pipefail
bin=${LIBRA_BINARY_DIR:?} src=${LIBRA_SOURCE_DIR:?}
lib="$bin/libra.a"
[[ -f "$lib" ]] || { echo "e2e_symbols: FAIL: $lib not found"; exit 1; }
command -v nm >/dev/null || { echo "e2e_symbols: FAIL: nm is needed (binutils)"; exit 1; }
bad=0
while read -r sym; do
  case "$sym" in
  __odr_asan.* | __asan_* | __ubsan_* | __sancov_*) ;; # the sanitizers' own, in an ASan build
  lb__*) ;;
  lb_*) grep -qw -- "$sym" "$src"/include/libra/*.h || { echo "exported but not declared in include/libra: $sym"; bad=1; } ;;
  *) echo "a global symbol outside libra's lb_ prefix: $sym"; bad=1 ;;
  esac
done < <(nm -g --defined-only "$lib" | awk 'NF == 3 && $2 ~ /[TDBRC]/ {print $3}' | sort -u)
[[ $bad -eq 0 ]] || { echo "e2e_symbols: FAIL"; exit 1; }
echo "e2e_symbols: ok ($(nm -g --defined-only "$lib" | awk 'NF == 3 && $2 ~ /[TDBRC]/' | grep -c ' lb_[a-z]') public, $(nm -g --defined-only "$lib" | grep -c ' lb__') internal)"
