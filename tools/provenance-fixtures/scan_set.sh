#!/usr/bin/env bash
# Scans every case of a provenance fixture set against open_P and open_Q plus every other reference
# the set's labels.json lists (references, with paths in reference_paths relative to the set), with
# the set's null_library as known-independent models, and prints one row per case: expected and
# found verdicts, the evidence that decided, the effect and the calibrated token-basis figures.
# Usage: tools/provenance-fixtures/scan_set.sh [--build DIR] [--set DIR] [--no-null] [--json]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build set=$root/tests/provenance/adversarial nulls=1 json=0
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --build) build=$2; shift 2 ;;
    --set) set=$2; shift 2 ;;
    --no-null) nulls=0; shift ;;
    --json) json=1; shift ;;
    *) echo "scan_set.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
tool=$build/bin/evald-provenance
[ -x "$tool" ] || { echo "scan_set.sh: $tool not built" >&2; exit 2; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
python3 - "$set/labels.json" > "$work/cases" <<'PY'
import json, sys
l = json.load(open(sys.argv[1]))
for r in l.get("references", []):
    if r not in ("open_P", "open_Q"): print("ref", r, l["reference_paths"][r])
for n in l["null_library"]: print("null", n, l["cases"][n]["path"])
for n, c in l["cases"].items():
    if n not in l["null_library"]: print("case", n, c["path"])
PY
for r in open_P open_Q; do "$tool" add -q --no-hash --library "$work/lib" --name "$r" --revision fixture "$root/tests/provenance/fixtures/$r" >/dev/null; done
while read -r kind name path; do
  if [ "$kind" = ref ]; then
    "$tool" add -q --no-hash --library "$work/lib" --name "$name" --revision fixture "$set/$path" >/dev/null
  elif [ "$kind" = null ]; then
    [ "$nulls" = 1 ] && "$tool" add -q --no-hash --independent --library "$work/lib" --name "$name" --revision null "$set/$path" >/dev/null
  else
    "$tool" scan -q --json --brief --library "$work/lib" "$set/$path" > "$work/$name.json" || true
  fi
done < "$work/cases"
python3 - "$set/labels.json" "$work" "$json" <<'PY'
import json, sys, os
l = json.load(open(sys.argv[1])); work = sys.argv[2]; as_json = sys.argv[3] == "1"
rows = []
for n, c in l["cases"].items():
    if n in l["null_library"] or not os.path.exists(f"{work}/{n}.json"): continue
    r = json.load(open(f"{work}/{n}.json"))
    comps = {x["component"]: x for x in r["components"]}
    row = {"case": n, "gate": r["gate"]["result"]}
    for comp in ("llm", "embeddings"):
        x = comps[comp]; best = x["references"][0] if x["references"] else {}
        cal = best.get("calibrated", {})
        row[comp] = {"expected": c["expected"][comp], "verdict": x["verdict"], "evidence": x.get("evidence"),
                     "effect": x.get("effect"), "calibrated_effect": cal.get("effect"), "null_z": cal.get("null_z")}
    rows.append(row)
if as_json:
    print(json.dumps(rows, indent=1)); sys.exit(0)
f = lambda v: "-" if v is None else ("%.3f" % v if isinstance(v, float) else str(v))
print("| case | gate | llm expected / found (evidence, effect) | embeddings expected / found (evidence, effect) | llm token-basis matched (z vs nulls) |")
print("|---|---|---|---|---|")
wrong = 0
for r in rows:
    cells = []
    for comp in ("llm", "embeddings"):
        x = r[comp]; ok = x["verdict"] == x["expected"]; wrong += not ok
        cells.append(f'{x["expected"]} / {x["verdict"]}{"" if ok else " **WRONG**"} ({f(x["evidence"])}, {f(x["effect"])})')
    print(f'| {r["case"]} | {r["gate"]} | {cells[0]} | {cells[1]} | {f(r["llm"]["calibrated_effect"])} ({f(r["llm"]["null_z"])}) |')
print(f"\n{len(rows)} cases, {wrong} components not as labelled")
PY
