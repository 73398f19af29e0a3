#!/usr/bin/env bash
# Builds evald's libFuzzer targets (tests/fuzz) with clang in build-fuzz/ and runs each one
# for a bounded time. See --help.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: tools/fuzz.sh [SECONDS] [--target NAME]... [--plugins] [--build-only] [--help]

Configures <repo>/build-fuzz with clang and -DEVALD_FUZZ=ON, builds the libFuzzer targets
(tests/fuzz/fuzz_*.cpp) and runs each for SECONDS (default 60), one after another, over a
working corpus in build-fuzz/tests/fuzz/work/<target>/corpus that starts from the seeds in
tests/fuzz/corpus/<target>/ and keeps what earlier runs found. The source tree is not
written to.

For each target it prints the executions, the new corpus units and any crash, leak,
timeout or out-of-memory file the run left (build-fuzz/tests/fuzz/work/<target>/artifacts/).
Reproduce one with:  build-fuzz/bin/<target> <artifact file>

Options:
  SECONDS          how long each target runs (default 60)
  --target NAME    run only this target (repeatable), e.g. --target fuzz_msgpack
  --plugins        build the example plugins and let fuzz_pipeline_yaml and
                   fuzz_control_request load them (EVALD_FUZZ_PLUGIN_DIR) instead of
                   using an empty plugin registry: reaches the plugin config checks
  --build-only     configure and build, run nothing
  -h, --help       this text

Environment:
  JOBS             ninja parallelism (default 2)
  FUZZ_TIMEOUT     libFuzzer -timeout, seconds one input may take (default 10)
  FUZZ_RSS_MB      libFuzzer -rss_limit_mb and -malloc_limit_mb (default 2048)

Exit status: 0 when every target ran clean, 1 when any found a crash (or failed to run),
2 on a usage error. tools/install-deps.sh runs first.
USAGE
}

seconds=60
targets=()
build_only=0
plugins=0
all_targets=(fuzz_msgpack fuzz_message fuzz_pipeline_yaml fuzz_daemon_config fuzz_control_request
             fuzz_safetensors fuzz_gguf fuzz_json fuzz_fingerprint fuzz_csv fuzz_score_sheet fuzz_vote_file fuzz_suite fuzz_echo)

while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --target) [ $# -ge 2 ] || { echo "fuzz.sh: --target needs a name" >&2; exit 2; }; targets+=("$2"); shift 2 ;;
    --target=*) targets+=("${1#--target=}"); shift ;;
    --build-only) build_only=1; shift ;;
    --plugins) plugins=1; shift ;;
    ''|*[!0-9]*) echo "fuzz.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    *) seconds="$1"; shift ;;
  esac
done
[ "$seconds" -gt 0 ] || { echo "fuzz.sh: SECONDS must be positive" >&2; exit 2; }
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  case " ${all_targets[*]} " in
    *" $t "*) ;;
    *) echo "fuzz.sh: unknown target '$t' (known: ${all_targets[*]})" >&2; exit 2 ;;
  esac
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
build="$root/build-fuzz"
jobs="${JOBS:-2}"
timeout="${FUZZ_TIMEOUT:-10}"
rss="${FUZZ_RSS_MB:-2048}"

tools/install-deps.sh

if [ -f "$build/CMakeCache.txt" ]; then
  home="$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt")"
  cxx="$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")"
  if [ "$home" != "$root" ] || [[ "$(basename "${cxx:-clang++}")" != clang++* ]]; then
    echo "fuzz.sh: $build was configured for another source dir or compiler ($home, $cxx); remove it and rerun" >&2
    exit 1
  fi
fi

echo "== configure $build (clang, EVALD_FUZZ=ON)"
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DEVALD_FUZZ=ON -DEVALD_TESTS=ON -DEVALD_SANITIZE=OFF >/dev/null
echo "== build ${targets[*]}"
extra=()
[ "$plugins" -eq 0 ] || extra=(file-value sum)
# Rebuild when the tree changed during the build (others editing it), so that no object
# disagrees with another about a header it was compiled against.
stamp="$build/.fuzz-build-stamp"
for attempt in 1 2 3; do
  touch "$stamp"
  ninja -C "$build" -j"$jobs" "${targets[@]}" "${extra[@]}"
  newer="$(find "$root" \( -path "$root/build*" -o -path "$root/.git" \) -prune -o -type f \( -name "*.[ch]pp" -o -name "*.[ch]" -o -name CMakeLists.txt -o -name "*.cmake" \) -newer "$stamp" -print -quit)"
  [ -n "$newer" ] || break
  echo "fuzz.sh: $newer changed during the build; building again"
done
[ "$build_only" -eq 0 ] || exit 0
if [ "$plugins" -eq 1 ]; then
  export EVALD_FUZZ_PLUGIN_DIR="$build/lib/evald/plugins"
else
  unset EVALD_FUZZ_PLUGIN_DIR
fi

summary=()
failed=0
for t in "${targets[@]}"; do
  work="$build/tests/fuzz/work/$t"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp -f tests/fuzz/corpus/"$t"/* "$work/corpus/" 2>/dev/null || true
  args=(-max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb="$rss" -malloc_limit_mb="$rss"
        -print_final_stats=1 -artifact_prefix="$work/artifacts/")
  [ -f "tests/fuzz/dict/$t.dict" ] && args+=(-dict="tests/fuzz/dict/$t.dict")
  marker="$work/.started"
  touch "$marker"
  echo "== $t: ${seconds}s (log: $work/fuzz.log)"
  rc=0
  "$build/bin/$t" "${args[@]}" "$work/corpus" >"$work/fuzz.log" 2>&1 || rc=$?
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log" | tail -1)"
  added="$(sed -n 's/^stat::new_units_added: *//p' "$work/fuzz.log" | tail -1)"
  found="$(find "$work/artifacts" -type f -newer "$marker" | sort)"
  line="$t: ${execs:-?} executions, ${added:-?} new units, corpus $(find "$work/corpus" -type f | wc -l) files, exit $rc"
  if [ "$rc" -ne 0 ] || [ -n "$found" ]; then
    failed=1
    line="$line  FAILED"
    echo "--- $t: last lines of the log"
    tail -n 40 "$work/fuzz.log"
    [ -z "$found" ] || printf '    artifact: %s\n' $found
  fi
  echo "$line"
  summary+=("$line")
done

echo
echo "== summary"
printf '%s\n' "${summary[@]}"
exit "$failed"
