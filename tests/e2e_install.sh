#!/usr/bin/env bash
# cmake --install puts libra where a user's project finds it both ways: find_package(libra)
# with libra::libra, and pkg-config libra.
set -euo pipefail
src=${LIBRA_SOURCE_DIR:?} bin=${LIBRA_BINARY_DIR:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$bin" --prefix "$tmp/prefix" >/dev/null
for f in include/libra.h include/libra/tensor.h lib/libra.a lib/pkgconfig/libra.pc lib/cmake/libra/libraConfig.cmake; do
  [[ -e "$tmp/prefix/$f" ]] || { echo "install: missing $f"; exit 1; }
done
ls "$tmp/prefix/bin"/libra-* >/dev/null 2>&1 || { echo "install: no libra-* programs in bin/"; exit 1; }

echo "-- find_package(libra)"
cmake -S "$src/tests/install_consumer" -B "$tmp/cm" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/cm" >/dev/null
"$tmp/cm/consumer"

echo "-- pkg-config libra"
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
cc -std=c11 -o "$tmp/pc" "$src/tests/install_consumer/main.c" $(pkg-config --cflags libra) \
   $(pkg-config --libs --static libra)
"$tmp/pc"
echo "install: ok"
