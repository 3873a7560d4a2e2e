#!/usr/bin/env bash
# The libraries export what include/libra declares and nothing else: every global symbol of
# libra.a and of libra_mpi.a (the MPI layer, or its stand-ins) is either declared in a public
# header (lb_...) or marked internal (lb__...).
set -uo pipefail
bin=${LIBRA_BINARY_DIR:?} src=${LIBRA_SOURCE_DIR:?}
command -v nm >/dev/null || { echo "e2e_symbols: FAIL: nm is needed (binutils)"; exit 1; }
bad=0
for lib in "$bin/libra.a" "$bin/libra_mpi.a"; do
  [[ -f "$lib" ]] || { echo "e2e_symbols: FAIL: $lib not found"; exit 1; }
  while read -r sym; do
    case "$sym" in
    __odr_asan.* | __asan_* | __ubsan_* | __sancov_*) ;; # the sanitizers' own, in an ASan build
    lb__*) ;;
    lb_*) grep -qw -- "$sym" "$src"/include/libra/*.h || { echo "$(basename "$lib"): exported but not declared in include/libra: $sym"; bad=1; } ;;
    *) echo "$(basename "$lib"): a global symbol outside libra's lb_ prefix: $sym"; bad=1 ;;
    esac
  done < <(nm -g --defined-only "$lib" | awk 'NF == 3 && $2 ~ /[TDBRC]/ {print $3}' | sort -u)
done
[[ $bad -eq 0 ]] || { echo "e2e_symbols: FAIL"; exit 1; }
lib="$bin/libra.a"
echo "e2e_symbols: ok ($(nm -g --defined-only "$lib" | awk 'NF == 3 && $2 ~ /[TDBRC]/' | grep -c ' lb_[a-z]') public, $(nm -g --defined-only "$lib" | grep -c ' lb__') internal in libra.a; $(nm -g --defined-only "$bin/libra_mpi.a" | awk 'NF == 3 && $2 ~ /[TDBRC]/' | grep -c ' lb_[a-z]') public in libra_mpi.a)"
