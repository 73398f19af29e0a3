#!/usr/bin/env bash
# The main job on embedded defaults: installs what is missing, builds, starts evald, runs a
# round of the demo pipeline over five sample teams, writes the result to a file it names,
# prints the summary and stops the daemon. Everything lands under out/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
if [ "${1:-}" = "--help" ]; then
  sed -n '2,4p' "$0" | sed 's/^# //'
  exit 0
fi

./tools/install-deps.sh
cmake -S . -B build -G Ninja > /dev/null
cmake --build build --target evald evalctl file-value sum

demo="$root/out/demo"
rm -rf "$demo"   # the demo's own data dir only, so every run starts fresh
mkdir -p "$demo"
bin="$root/build/bin"
ctl() { (cd "$demo" && "$bin/evalctl" "$@"); }

# The daemon on its embedded defaults, started in out/demo: data dir out/demo/evald-data.
(cd "$demo" && exec "$bin/evald" --log-file evald.log) &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 200); do ctl status > /dev/null 2>&1 && break; sleep 0.05; done
ctl status

ctl pipeline load "$root/pipelines/demo.yaml"
ctl competition create demo --name "evald demo competition (SAMPLE DATA)"
ctl round create demo round-1 --pipeline demo
for f in "$root"/tools/demo/team-*.score; do
  team=$(basename "$f" .score)
  ctl entrant add demo "$team" --name "$team (sample)" --round round-1 --set score_file="$f"
done

run=$(ctl run start demo round-1)
echo "started $run"
ctl run wait "$run"
echo
ctl run outputs "$run"

result="$demo/evald-data/artifacts/$run/total/_round/result.json"
cp "$result" "$demo/result.json"
ctl audit verify
ctl shutdown > /dev/null
wait "$pid" || true
trap - EXIT
echo
echo "demo result (sample data): $demo/result.json"
cat "$demo/result.json"
echo "daemon log: $demo/evald.log"
