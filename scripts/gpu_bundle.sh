#!/usr/bin/env bash
# Makes a build folder made here (Debian 12) runnable on the GPU machine (stock Ubuntu 24.04 with
# the CUDA 13 toolkit and driver): copies into BUILD_DIR/lib every shared library that the
# folder's programs and libraries need and that such a machine lacks (Debian's
# libbenchmark.so.1debian, shared gtest/gmock, libfmt, libunwind...). scripts/gpu_check.sh puts
# BUILD_DIR/lib on LD_LIBRARY_PATH. Run it HERE, after building, before carrying the folder.
#
# What is left out, because the GPU machine has its own (and a copy could clash with it): the C
# and C++ runtimes (glibc's libraries, libstdc++, libgcc_s), the CUDA toolkit's libraries under
# /usr/local/cuda and the driver's (libcuda, libnvidia-*), and the base libraries every Ubuntu
# 24.04 install carries (zlib, zstd, lz4, xz).
#
# Usage: scripts/gpu_bundle.sh BUILD_DIR
# Exit 1 when a library that a program needs cannot be found here either ("not found" in ldd).
set -euo pipefail

if [[ $# -ne 1 || ! -d $1 ]]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 64
fi
build=$(cd "$1" && pwd)
dest="$build/lib"
mkdir -p "$dest"

provided_there() {
  local path=$1 name
  name=$(basename "$path")
  case "$path" in
    /usr/local/cuda*) return 0 ;;
  esac
  case "$name" in
    linux-vdso.so* | ld-linux*.so* | libc.so* | libm.so* | libdl.so* | libpthread.so* | \
      librt.so* | libresolv.so* | libutil.so* | libmvec.so* | libanl.so*) return 0 ;;
    libstdc++.so* | libgcc_s.so* | libatomic.so*) return 0 ;;
    libcuda.so* | libnvidia-*.so* | libcudart.so*) return 0 ;;
    libz.so* | libzstd.so* | liblz4.so* | liblzma.so*) return 0 ;;
  esac
  return 1
}

# Every ELF program or shared library in the build folder, skipping CMake's own scratch files.
mapfile -t elves < <(find "$build" -path "$build/lib" -prune -o -path '*/CMakeFiles' -prune -o \
  -type f \( -perm -u+x -o -name '*.so' -o -name '*.so.*' \) -print |
  while read -r f; do [[ $(head -c4 "$f" | od -An -c | tr -d ' ') == '177ELF' ]] && echo "$f"; done)

missing=0
declare -A copied=()
for elf in "${elves[@]}"; do
  while read -r line; do
    if [[ $line == *"not found"* ]]; then
      provided_there "/${line%% *}" && continue
      echo "MISSING here too: ${line%% *} (needed by ${elf#"$build"/})" >&2
      missing=1
      continue
    fi
    [[ $line =~ =\>\ (/[^ ]+) ]] || continue
    lib=${BASH_REMATCH[1]}
    provided_there "$lib" && continue
    name=$(basename "$lib")
    [[ -n ${copied[$name]:-} ]] && continue
    copied[$name]=1
    cp -L "$lib" "$dest/$name"
    echo "bundled $name (from $lib, needed by ${elf#"$build"/})"
  done < <(ldd "$elf" 2>/dev/null || true)
done
# The trace code loads libunwind at run time (the GPU machine has none; without it native stacks
# fall back to libgcc's unwinder, about 15x slower) and looks for it beside its own binary first:
# libcudefrag.so, and the trace benchmarks (trace_bench, the probe python_bench.py loads).
unwind=$(ldconfig -p | awk '/libunwind\.so\.8 .*x86-64/ {print $NF; exit}')
for beside in "$build"/shim/hooks/libcudefrag.so "$build"/bench/trace/trace_bench; do
  [[ -f $beside && -n $unwind ]] || continue
  cp -L "$unwind" "$(dirname "$beside")/libunwind.so.8"
  echo "bundled libunwind.so.8 beside ${beside#"$build"/} (from $unwind)"
done
echo "gpu_bundle: ${#elves[@]} programs and libraries checked, ${#copied[@]} libraries in $dest"
exit "$missing"
