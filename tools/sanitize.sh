#!/usr/bin/env bash
# Builds evald with AddressSanitizer and UndefinedBehaviorSanitizer in build-asan/ (or
# ThreadSanitizer in build-tsan/) and runs the test suite there. See --help.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: tools/sanitize.sh [--thread] [--target T]... [--build-only] [--help] [-- CTEST_ARGS...]

Configures <repo>/build-asan with -DEVALD_SANITIZE=ON (-fsanitize=address,undefined on
everything: the daemon, evalctl, the tests and the plugin libraries, so the plugins the
tests dlopen carry the same instrumentation), builds everything, and runs
  ctest --output-on-failure -LE fuzz [CTEST_ARGS...]
there. A re-run reuses the build dir (incremental build).

Any sanitizer report fails the test that triggered it: ASAN_OPTIONS and UBSAN_OPTIONS are
set to halt on the first error, and LeakSanitizer is on (detect_leaks=1) unless a probe
shows it cannot run on this machine (e.g. under ptrace), in which case it is turned off
with a note. Options already in ASAN_OPTIONS / UBSAN_OPTIONS / LSAN_OPTIONS are kept and
take precedence.

The compiler is gcc unless CC/CXX say otherwise (with clang, ASan's runtime is not linked
into shared objects, so the plugins' -Wl,--no-undefined needs -shared-libasan; gcc is
the tested choice).

With --thread: ThreadSanitizer instead (-DEVALD_SANITIZE_THREAD=ON, -fsanitize=thread on
everything) in <repo>/build-tsan, TSAN_OPTIONS halting on the first report, with
tools/tsan.supp (races inside Debian's uninstrumented libzmq).

Options:
  --thread         ThreadSanitizer (build-tsan/) instead of ASan+UBSan
  --target T       build only target T and what it needs (repeatable), e.g. --target
                   evald_benchmark_tests -- -R Benchmark; default: everything
  --build-only     configure and build, run no tests
  -h, --help       this text
  -- CTEST_ARGS    passed to ctest, e.g. -- -R Store -j2

Environment:
  JOBS             ninja parallelism (default 2)

Exit status: ctest's (0 when every test passed); 1 when configuring or building fails;
2 on a usage error. tools/install-deps.sh runs first.
USAGE
}

build_only=0
thread=0
targets=()
ctest_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --build-only) build_only=1; shift ;;
    --thread) thread=1; shift ;;
    --target) [ $# -ge 2 ] || { echo "sanitize.sh: --target needs a value" >&2; exit 2; }; targets+=("$2"); shift 2 ;;
    --) shift; ctest_args=("$@"); break ;;
    *) echo "sanitize.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [ "$thread" -eq 1 ]; then
  build="$root/build-tsan" sanitize_flag=-DEVALD_SANITIZE_THREAD=ON
else
  build="$root/build-asan" sanitize_flag=-DEVALD_SANITIZE=ON
fi
jobs="${JOBS:-2}"

tools/install-deps.sh

export CC="${CC:-gcc}" CXX="${CXX:-g++}"
echo "== configure $build ($CXX, ${sanitize_flag#-D})"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "$sanitize_flag" -DEVALD_TESTS=ON -DEVALD_FUZZ=OFF >/dev/null
# Other people may edit the tree while this builds: objects compiled before a header changed
# and objects compiled after it would disagree about struct layouts (false ASan reports).
# Build again until no source file is newer than the start of the last build.
changed_since() {
  find "$root" \( -path "$root/build*" -o -path "$root/.git" \) -prune -o -type f \( -name "*.[ch]pp" -o -name "*.[ch]" -o -name CMakeLists.txt -o -name "*.cmake" \) -newer "$1" -print -quit
}
stamp="$build/.sanitize-build-stamp"
for attempt in 1 2 3; do
  echo "== build"
  mkdir -p "$build" && touch "$stamp"
  ninja -C "$build" -j"$jobs" "${targets[@]}"
  newer="$(changed_since "$stamp")"
  [ -n "$newer" ] || break
  echo "sanitize.sh: $newer changed during the build; building again"
done
[ "$build_only" -eq 0 ] || exit 0

if [ "$thread" -eq 1 ]; then
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tools/tsan.supp${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
  echo "== ctest (TSAN_OPTIONS=$TSAN_OPTIONS)"
  rc=0
  ctest --test-dir "$build" --output-on-failure -LE fuzz "${ctest_args[@]}" || rc=$?
  exit "$rc"
fi

# LeakSanitizer needs ptrace-free, unrestricted access to the process; probe it once with the
# same compiler and flags rather than guess.
detect_leaks=1
probe_dir="$(mktemp -d)"
trap 'rm -rf "$probe_dir"' EXIT
printf '#include <stdlib.h>\nvoid* volatile p;\nint main(void){ p = malloc(7); p = 0; return 0; }\n' >"$probe_dir/leak.c"
if "$CC" -fsanitize=address -g "$probe_dir/leak.c" -o "$probe_dir/leak" 2>"$probe_dir/cc.log"; then
  probe_out="$(ASAN_OPTIONS=detect_leaks=1 "$probe_dir/leak" 2>&1 || true)"
  if ! grep -q "detected memory leaks" <<<"$probe_out"; then
    detect_leaks=0
    echo "sanitize.sh: note: LeakSanitizer does not work here ($(grep -m1 -i sanitizer <<<"$probe_out" || echo 'no report')); running with detect_leaks=0"
  fi
else
  detect_leaks=0
  echo "sanitize.sh: note: cannot build the LeakSanitizer probe; running with detect_leaks=0"
fi

asan="halt_on_error=1:abort_on_error=0:detect_leaks=$detect_leaks:detect_stack_use_after_return=1"
asan="$asan:check_initialization_order=1:strict_init_order=1:detect_invalid_pointer_pairs=0:print_summary=1"
export ASAN_OPTIONS="$asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:report_error_type=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export LSAN_OPTIONS="print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
echo "== ctest (ASAN_OPTIONS=$ASAN_OPTIONS UBSAN_OPTIONS=$UBSAN_OPTIONS)"
rc=0
ctest --test-dir "$build" --output-on-failure -LE fuzz "${ctest_args[@]}" || rc=$?
exit "$rc"
