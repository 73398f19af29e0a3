// The benchmark tests' oracle: log-likelihoods and greedy generations computed directly with
// llama.cpp (node-llama-cpp), through the model's own tokenizer, with no HTTP, no echo and no
// token text in between, so it shares nothing with the plugin's reading of a server's echo.
// Log-likelihood follows lm-evaluation-harness: the context's trailing whitespace moves to the
// continuation, and the continuation's tokens are tokens(context + continuation) after
// len(tokens(context)); BOS first when the model adds one.
//
// Usage: node oracle.mjs --modules DIR --model FILE < requests.jsonl > answers.jsonl
//   {"op": "loglikelihood", "context": "...", "continuation": " A"}  -> {"logprob": x, "tokens": n}
//   {"op": "greedy", "prompt": "...", "max_tokens": 8, "stop": ["\n"]} -> {"text": "..."}
import readline from "node:readline";
import {loadEngine} from "./engine.mjs";

const argv = process.argv.slice(2);
const opt = {};
for (let i = 0; i < argv.length; i += 2) opt[argv[i].replace(/^--/, "")] = argv[i + 1];
const model = await loadEngine(opt.modules, opt.model);
const context = await model.createContext({contextSize: 4096, threads: 1});
const seq = context.getSequence();
const withBos = (t) => (model.tokens.shouldPrependBosToken ? [model.tokens.bos, ...t] : t);

// Natural-log probabilities of every next token after each position of tokens.
async function nextProbabilities(tokens) {
  await seq.clearHistory();
  const out = await seq.controlledEvaluate(tokens.map((t) => [t, {generateNext: {probabilities: true}}]));
  return out.map((o) => o.next.probabilities);
}

async function loglikelihood(ctx, cont) {
  const trimmed = ctx.replace(/\s+$/, "");
  cont = ctx.slice(trimmed.length) + cont;
  const c = withBos(model.tokenize(trimmed, false));
  const w = withBos(model.tokenize(trimmed + cont, false));
  const probs = await nextProbabilities(w);
  let sum = 0;
  for (let k = c.length; k < w.length; ++k) sum += Math.log(probs[k - 1].get(w[k]));
  return {logprob: sum, tokens: w.length - c.length};
}

// Greedy decoding, one token at a time on top of the prompt's evaluation (as decoders run).
async function greedy(prompt, maxTokens, stop) {
  const tokens = withBos(model.tokenize(prompt, false));
  let probs = (await nextProbabilities(tokens)).at(-1);
  const out = [];
  let text = "";
  for (let n = 0; n < maxTokens; ++n) {
    let best = -1, bestP = -1;
    for (const [t, p] of probs) if (p > bestP) [best, bestP] = [t, p];
    if (model.isEogToken(best)) break;
    out.push(best);
    text = model.detokenize(out, false, tokens);
    const cut = stop.map((s) => text.indexOf(s)).filter((i) => i >= 0);
    if (cut.length) return {text: text.slice(0, Math.min(...cut))};
    const next = await seq.controlledEvaluate([[best, {generateNext: {probabilities: true}}]]);
    probs = next[0].next.probabilities;
  }
  return {text};
}

for await (const line of readline.createInterface({input: process.stdin})) {
  if (!line.trim()) continue;
  const r = JSON.parse(line);
  const a = r.op === "greedy" ? await greedy(r.prompt, r.max_tokens, r.stop ?? []) : await loglikelihood(r.context, r.continuation);
  process.stdout.write(JSON.stringify(a) + "\n");
}
