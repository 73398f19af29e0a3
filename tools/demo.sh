#!/usr/bin/env bash
# The main job on embedded defaults: installs what is missing, builds, starts evald and runs a
# SAMPLE competition of two rounds: five teams in round 1 (one disqualified by the
# independence check, three advance), an additional call adding a sixth, two finalists from
# round 2. Each team's model is a tiny real model (tests/provenance/fixtures) served by a local
# OpenAI-compatible toy server; the panel's sheets and users' votes are tools/demo/round-*.
# Prints each round's scoreboard and decision and where the signed reports are, then stops the
# daemon. Everything it writes lands under out/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
if [ "${1:-}" = "--help" ]; then
  sed -n '2,8p' "$0" | sed 's/^# //'
  exit 0
fi

./tools/install-deps.sh
cmake -S . -B build -G Ninja > /dev/null
cmake --build build --target evald evald-worker evalctl evald-provenance \
  provenance benchmark expert-scores user-scores tally report

demo="$root/out/demo"
rm -rf "$demo"   # the demo's own directory only, so every run starts fresh
mkdir -p "$demo"
bin="$root/build/bin"
ctl() { "$bin/evalctl" --data-dir "$demo/evald-data" "$@"; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

echo "== fingerprints of the open models (the reference library the independence check uses)"
for ref in open_P open_Q; do
  "$bin/evald-provenance" add -q --library "$demo/library" --name "$ref" --revision v1 "tests/provenance/fixtures/$ref"
done
"$bin/evald-provenance" list --library "$demo/library"

# Each team serves its model on an OpenAI-compatible endpoint. The toy server answers from a
# hash of each item: it "knows" the given share of the sample suites' items. Started from this
# shell (not a $(...) subshell) so that the exit trap knows their pids and stops them.
start_server() {  # share name
  python3 tests/benchmark/toy_openai_server.py --port 0 --know "$1" --suites suites > "$demo/toy-$2.out" 2>&1 &
  pids+=($!)
}
url_of() {  # name
  local out="$demo/toy-$1.out"
  for _ in $(seq 100); do grep -q '^PORT ' "$out" 2>/dev/null && break; sleep 0.1; done
  echo "http://127.0.0.1:$(sed -n 's/^PORT //p' "$out")/v1"
}
start_server 0.9 strong
start_server 0.75 middling
start_server 0.5 weak
strong=$(url_of strong)
middling=$(url_of middling)
weak=$(url_of weak)

echo "== evald on its embedded defaults (data dir $demo/evald-data)"
"$bin/evald" --data-dir "$demo/evald-data" --log-file "$demo/evald.log" &
evald_pid=$!
pids+=($evald_pid)
for _ in $(seq 200); do ctl status > /dev/null 2>&1 && break; sleep 0.05; done
ctl status
ctl pipeline load pipelines/sample-round-1.yaml
ctl pipeline load pipelines/sample-round-2.yaml
ctl competition define pipelines/sample-competition.yaml

team() {  # round id name weights endpoint
  ctl entrant add sample "$2" --name "$3" --round "$1" --set weights="tests/provenance/fixtures/$4" --set endpoint="$5" --set model=toy > /dev/null
  echo "  $2 ($3): weights $4, endpoint $5"
}

scoreboard() {  # round run
  local dir="$demo/evald-data/artifacts/$2/report/_round"
  python3 - "$dir/scoreboard.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], encoding="utf-8-sig")))
widths = [max(len(r[i]) if i < len(r) else 0 for r in rows) for i in range(len(rows[0]))]
for r in rows:
    print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
PY
  echo "  report: $dir/report.html (signed: report.sig, key report.pub)"
}

run_round() {  # round
  local run
  run=$(ctl run start sample "$1")
  echo "  $run started"
  ctl run wait "$run"
  ctl round decide sample "$1"
  scoreboard "$1" "$run"
  last_run=$run
}

echo "== round 1: five teams"
team round-1 team-a "한빛 AI" indep_same_data "$strong"
team round-1 team-b "바다 랩스" indep_diff_width "$middling"
team round-1 team-c "산들 모델" reinit_then_train "$middling"
team round-1 team-d "누리 테크" indep_same_data "$weak"
team round-1 team-e "강산 AI" vlm_reuse_Q "$strong"
run_round round-1
round1_run=$last_run

echo "== additional call: team-f joins round 2 with the three that advanced"
ctl call open sample round-2
team round-2 team-f "별빛 연구소" reinit_then_train "$middling"
ctl call close sample round-2
run_round round-2
round2_run=$last_run

echo "== the competition"
ctl competition report sample
ctl competition report sample --out "$demo/competition" > /dev/null
ctl audit verify
key=$(cat "$demo/evald-data/artifacts/$round2_run/report/_round/report.pub")
ctl report verify "$demo/evald-data/artifacts/$round2_run/report/_round" --key "$key" | head -1
ctl shutdown > /dev/null
wait "$evald_pid" 2>/dev/null || true
echo
echo "SAMPLE DATA: the teams, models, scores and votes are invented for this demo."
echo "competition report: $demo/competition/competition.html"
echo "round reports: $demo/evald-data/artifacts/$round1_run/report/_round/report.html"
echo "               $demo/evald-data/artifacts/$round2_run/report/_round/report.html"
echo "daemon log: $demo/evald.log"
