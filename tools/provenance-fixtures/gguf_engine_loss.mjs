// Mean next-token cross-entropy (nats) of a GGUF model as llama.cpp computes it, through the
// test engine node-llama-cpp (tools/install-deps.sh), over given token-id windows: every window
// is evaluated from an empty context, and the loss at position k is -log p(ids[k+1] | ids[..k]).
// make_adversarial.py uses it to check its hand-written GGUF files against a real engine.
//
// Usage: node gguf_engine_loss.mjs --modules DIR --model FILE --windows FILE
//   windows: {"A": [[id, ...], ...], "B": [...]} (each window T+1 ids) -> stdout {"A": x, "B": y}
import fs from "node:fs";
import {loadEngine} from "../../tests/benchmark/engine/engine.mjs";

const argv = process.argv.slice(2);
const opt = {};
for (let i = 0; i < argv.length; i += 2) opt[argv[i].replace(/^--/, "")] = argv[i + 1];
const windows = JSON.parse(fs.readFileSync(opt.windows, "utf8"));
const model = await loadEngine(opt.modules, opt.model);
const context = await model.createContext({contextSize: 256, threads: 1});
const seq = context.getSequence();
const out = {};
for (const [name, list] of Object.entries(windows)) {
  let sum = 0, n = 0;
  for (const w of list) {
    await seq.clearHistory();
    const res = await seq.controlledEvaluate(w.slice(0, -1).map((t) => [t, {generateNext: {probabilities: true}}]));
    for (let k = 0; k < res.length; ++k) {
      const p = res[k].next.probabilities.get(w[k + 1]);
      if (!(p > 0)) throw new Error(`no probability for token ${w[k + 1]} at ${name} window position ${k}`);
      sum -= Math.log(p);
      ++n;
    }
  }
  out[name] = sum / n;
}
process.stdout.write(JSON.stringify(out) + "\n");
await context.dispose();
await model.dispose();
