#!/usr/bin/env bash
# Installs the SDK from this build into a temp prefix, builds an example plugin from a
# separate source tree with find_package(evald_sdk), and loads it into the real daemon.
set -euo pipefail
src=$1 work=$2 evald=$3
rm -rf "$work" && mkdir -p "$work"
cmake --install "$(dirname "$(dirname "$evald")")" --prefix "$work/prefix" --component Unspecified > "$work/install.log"
test -f "$work/prefix/include/evald/plugin.hpp"
cmake -S "$src/tests/out_of_tree/example-plugin" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_BUILD_TYPE=Release > "$work/configure.log"
cmake --build "$work/build" > "$work/build.log"
plugin=$(find "$work/build" -name word-count.so)
test -n "$plugin"
mkdir -p "$work/plugins" && cp "$plugin" "$work/plugins/"
out=$("$evald" --plugin-dir "$work/plugins" --list-plugins)
echo "$out"
grep -q "word-count *0.3.0" <<< "$out"
help=$("$evald" --plugin-dir "$work/plugins" --plugin-help word-count)
grep -q "submission_key (string, default \"text\")" <<< "$help"
printf 'name: wc\nstages:\n  - id: count\n    plugin: word-count\n' > "$work/wc.yaml"
"$evald" --plugin-dir "$work/plugins" --validate "$work/wc.yaml"
# And a real run through the daemon.
evalctl="$(dirname "$evald")/evalctl"
echo "one two three four" > "$work/words.txt"
"$evald" --data-dir "$work/data" --plugin-dir "$work/plugins" --log-file "$work/evald.log" &
pid=$!
trap 'kill -9 $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do "$evalctl" --data-dir "$work/data" status > /dev/null 2>&1 && break; sleep 0.05; done
ctl() { "$evalctl" --data-dir "$work/data" "$@"; }
ctl pipeline load "$work/wc.yaml"
ctl competition create oot
ctl round create oot r1 --pipeline wc
ctl entrant add oot t1 --round r1 --set text="$work/words.txt"
ctl run start oot r1 --wait
ctl --json run outputs run-000001 | grep -q '"value":4'
ctl shutdown
wait $pid
echo "out-of-tree plugin built against the installed SDK, loaded and run by the daemon"
