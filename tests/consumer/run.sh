#!/usr/bin/env bash
# sockmsg installed and used from outside the tree (issue 14): installs BUILD_DIR
# into a temporary prefix, moves the prefix elsewhere (the package must be
# relocatable), then builds and runs, against the moved prefix:
#   - every installed header alone, as C11 and as C++11, pedantic;
#   - consumer.c with `pkg-config --cflags --libs sockmsg`, run with
#     LD_LIBRARY_PATH;
#   - consumer.cpp with the C++ compiler and pkg-config, run through an rpath;
#   - the CMake project here (find_package(sockmsg)): consumer.c linked with
#     sockmsg::static and with sockmsg::sockmsg.
# Under sanitizers the library needs their runtime: the consumers are built
# with the same -fsanitize flags, so they are checked by them too.
#
# Usage: run.sh BUILD_DIR VERSION CMAKE GENERATOR CC CXX [SANITIZERS]
# Exits 0 on success, 77 (skipped) when pkg-config or CXX is missing, else 1.
set -euo pipefail

if [ $# -lt 6 ]; then
    echo "usage: $0 BUILD_DIR VERSION CMAKE GENERATOR CC CXX [SANITIZERS]" >&2
    exit 2
fi
build=$1 version=$2 cmake=$3 generator=$4 cc=$5 cxx=$6 san=${7:-}
here=$(cd "$(dirname "$0")" && pwd)
limit=120 # seconds for any one step

command -v pkg-config >/dev/null || { echo "SKIP: pkg-config not installed (scripts/deps.sh)"; exit 77; }
command -v "$cxx" >/dev/null || { echo "SKIP: no C++ compiler ($cxx; scripts/deps.sh)"; exit 77; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sockmsg-consumer.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }
# run CMD...: run with the step time limit; its output is shown if it fails.
run() {
    local rc=0
    timeout "$limit" "$@" >"$tmp/step.log" 2>&1 || rc=$?
    if [ $rc -ne 0 ]; then
        cat "$tmp/step.log" >&2
        fail "exit $rc: $*"
    fi
}

sanflags=()
[ -n "$san" ] && sanflags=(-fsanitize="$san" -fno-omit-frame-pointer)
# Whatever the caller's environment, the library must be found only where
# each consumer says.
unset LD_LIBRARY_PATH PKG_CONFIG_PATH CPATH LIBRARY_PATH

step "install $build, then move the prefix"
run "$cmake" --install "$build" --prefix "$tmp/staged"
mv "$tmp/staged" "$tmp/prefix"
prefix=$tmp/prefix
pc=$(find "$prefix" -name sockmsg.pc -path '*/pkgconfig/*')
[ -n "$pc" ] || fail "no sockmsg.pc installed"
libdir=$(dirname "$(dirname "$pc")")
[ -f "$libdir/cmake/sockmsg/sockmsgConfig.cmake" ] || fail "no $libdir/cmake/sockmsg/sockmsgConfig.cmake"
[ -f "$libdir/cmake/sockmsg/sockmsgConfigVersion.cmake" ] || fail "no sockmsgConfigVersion.cmake"
[ -f "$libdir/libsockmsg.a" ] || fail "no libsockmsg.a"
[ -f "$libdir/libsockmsg.so.$version" ] || fail "no libsockmsg.so.$version"
soname=$(readelf -d "$libdir/libsockmsg.so.$version" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = "libsockmsg.so.${version%%.*}" ] || fail "SONAME is '$soname', want libsockmsg.so.${version%%.*}"
[ -L "$libdir/libsockmsg.so" ] || fail "no libsockmsg.so development link"
# No installed text file may name where it was built or first installed.
for path in "$tmp/staged" "$(cd "$build" && pwd)" "$(cd "$here/../.." && pwd)"; do
    if grep -rlF "$path" "$libdir/cmake" "$libdir/pkgconfig" "$prefix/include"; then
        fail "installed files name $path: not relocatable"
    fi
done

# ldd_check EXE WANT: WANT "none" means not linked with libsockmsg.so at all,
# else the directory libsockmsg.so must be loaded from.
ldd_check() {
    local got
    got=$(ldd "$1" | awk '$1 ~ /^libsockmsg\.so/ { print $3 }')
    if [ "$2" = none ]; then
        [ -z "$got" ] || fail "$1 loads $got, but links sockmsg statically"
    else
        [ "$(dirname "$got")" = "$2" ] || fail "$1 loads libsockmsg from '$got', not $2"
    fi
}
# expect_ok EXE: the consumer ran and printed "ok VERSION".
expect_ok() {
    local out
    out=$(timeout "$limit" "$@") || fail "exit $?: $*"
    [ "$out" = "ok $version" ] || fail "$1 printed '$out', want 'ok $version'"
}

step "each installed header alone, as C11 and as C++11"
for h in "$prefix"/include/sockmsg/*.h; do
    inc="#include <sockmsg/$(basename "$h")>"
    echo "$inc" | run "$cc" -std=c11 -Wall -Wextra -Wpedantic -pedantic-errors -Werror \
        -fsyntax-only -I"$prefix/include" -x c -
    echo "$inc" | run "$cxx" -std=c++11 -Wall -Wextra -Wpedantic -pedantic-errors -Werror \
        -fsyntax-only -I"$prefix/include" -x c++ -
done

export PKG_CONFIG_PATH=$libdir/pkgconfig
step "pkg-config"
[ "$(pkg-config --modversion sockmsg)" = "$version" ] || fail "pkg-config --modversion is not $version"
pkg-config --static --libs sockmsg | grep -q -- -pthread || fail "Libs.private lacks -pthread"
read -r -a pc_flags <<<"$(pkg-config --cflags --libs sockmsg)"
run "$cc" -std=c11 -Wall -Wextra -Wpedantic -Werror "${sanflags[@]}" "$here/consumer.c" \
    "${pc_flags[@]}" -o "$tmp/c_pkgconfig"
LD_LIBRARY_PATH=$libdir ldd_check "$tmp/c_pkgconfig" "$libdir"
LD_LIBRARY_PATH=$libdir expect_ok "$tmp/c_pkgconfig"

step "C++ ($cxx) with pkg-config and an rpath"
run "$cxx" -std=c++11 -Wall -Wextra -Wpedantic -Werror "${sanflags[@]}" "$here/consumer.cpp" \
    "${pc_flags[@]}" -Wl,-rpath,"$libdir" -o "$tmp/cxx_pkgconfig"
ldd_check "$tmp/cxx_pkgconfig" "$libdir"
expect_ok "$tmp/cxx_pkgconfig"

step "CMake find_package(sockmsg): sockmsg::static and sockmsg::sockmsg"
run "$cmake" -S "$here" -B "$tmp/cmake-build" -G "$generator" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_PREFIX_PATH="$prefix" -DSM_EXPECT_VERSION="$version" -DSM_EXPECT_PREFIX="$prefix" \
    -DCMAKE_C_FLAGS="${sanflags[*]}" -DCMAKE_EXE_LINKER_FLAGS="${sanflags[*]}"
run "$cmake" --build "$tmp/cmake-build"
ldd_check "$tmp/cmake-build/consumer_static" none
expect_ok "$tmp/cmake-build/consumer_static"
# CMake gives the build tree an rpath to the imported library's directory.
ldd_check "$tmp/cmake-build/consumer_shared" "$libdir"
expect_ok "$tmp/cmake-build/consumer_shared"

echo "install and consumers: all passed (version $version${san:+, -fsanitize=$san})"
