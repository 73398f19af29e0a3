// An OpenAI-compatible HTTP server around real llama.cpp inference (node-llama-cpp's prebuilt
// CPU binary), for the benchmark tests: the log-probabilities and the tokenizer are llama.cpp's;
// only the JSON shapes are written here. Routes:
//   GET  /v1/models, /health
//   POST /tokenize {content, add_special?, with_pieces?}        (llama.cpp server's shape)
//   POST /v1/completions {prompt, max_tokens, echo, logprobs, stop}   (greedy decoding)
//   POST /v1/chat/completions {messages, max_tokens, stop}
//
// --token-text sets how echoed tokens are spelled, as real servers differ:
//   openai   decoded text; a token that is not whole UTF-8 is "bytes:\xNN..." (OpenAI's convention)
//   pieces   the vocabulary's raw pieces: "▁" for a space, "<0xNN>" for a byte-fallback token
//   lossy    decoded text, a partial UTF-8 token decoded with U+FFFD (cannot be read back)
// text_offset counts the BOS token's text, the tokenizer's leading space and one character per
// byte of a byte token, as the llama.cpp-based server this was first seen on did.
//
// Usage: node server.mjs --modules DIR --model FILE [--port 0] [--host 127.0.0.1] [--name NAME]
//                        [--sequences 4] [--context 4096] [--threads 1] [--token-text openai]
// (llama.cpp's default of a thread per core spins them: on a small model one thread is ~15x faster)
// Prints "listening PORT" on stdout once it accepts connections.
import http from "node:http";
import {loadEngine} from "./engine.mjs";

function args() {
  const a = {modules: "", model: "", port: 0, host: "127.0.0.1", name: "tiny", sequences: 4, context: 4096, threads: 1, tokenText: "openai"};
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i += 2) {
    const k = v[i].replace(/^--/, "").replace(/-(.)/g, (_, c) => c.toUpperCase());
    if (!(k in a)) throw new Error(`unknown option ${v[i]}`);
    a[k] = typeof a[k] === "number" ? Number(v[i + 1]) : v[i + 1];
  }
  if (!a.model) throw new Error("--model FILE is required");
  return a;
}

const opt = args();
const model = await loadEngine(opt.modules, opt.model);
const context = await model.createContext({contextSize: opt.context, sequences: opt.sequences, threads: opt.threads});
const bos = model.tokens.bos;

// Sequences are lent to one request at a time; the rest wait in order.
const free = [];
for (let i = 0; i < opt.sequences; ++i) free.push(context.getSequence());
const waiting = [];
async function withSequence(fn) {
  const seq = free.pop() ?? await new Promise((r) => waiting.push(r));
  try {
    await seq.clearHistory();
    return await fn(seq);
  } finally {
    const next = waiting.shift();
    if (next) next(seq); else free.push(seq);
  }
}

function tokenizePrompt(text) {
  const t = model.tokenize(text, false);
  return model.tokens.shouldPrependBosToken && bos !== null ? [bos, ...t] : t;
}

// The bytes of one token, from the vocabulary's pieces (SentencePiece: "▁" is a space,
// "<0xNN>" a byte-fallback token); the BOS token is spelled as its text.
const pieces = model.fileInfo.metadata.tokenizer.ggml.tokens;
function tokenBytes(t) {
  if (t === bos) return Buffer.from(model.tokens.bosString ?? "");
  const piece = pieces[t];
  const byte = /^<0x([0-9A-Fa-f]{2})>$/.exec(piece);
  if (byte) return Buffer.from([parseInt(byte[1], 16)]);
  return Buffer.from(piece.replace(/\u2581/g, " "), "utf8");
}

function validUtf8(buf) {
  return Buffer.from(buf.toString("utf8"), "utf8").equals(buf);
}

function tokenText(t) {
  if (t === bos) return model.tokens.bosString ?? "";
  const b = tokenBytes(t);
  if (opt.tokenText === "pieces") return pieces[t];
  if (validUtf8(b)) return b.toString("utf8");
  if (opt.tokenText === "lossy") return b.toString("utf8");
  return "bytes:" + [...b].map((x) => "\\x" + x.toString(16).padStart(2, "0")).join("");
}

// How many characters text_offset advances for a token (see the header).
function offsetWidth(t) {
  if (t === bos) return (model.tokens.bosString ?? "").length;
  const b = tokenBytes(t);
  return validUtf8(b) ? [...b.toString("utf8")].length : b.length;
}

// Log-probabilities of every token after the first, and greedy generation of up to maxTokens
// more, stopping at a stop string or end of generation. topN > 0 adds each position's best N.
async function evaluate(seq, tokens, maxTokens, stop, topN) {
  const input = tokens.map((t) => [t, {generateNext: {probabilities: true}}]);
  const out = await seq.controlledEvaluate(input);
  const lps = [null], tops = [null];
  const top = (probs) => {
    if (!topN) return null;
    const o = {};
    for (const [tok, p] of [...probs.entries()].slice(0, topN)) o[tokenText(tok)] = Math.log(p);
    return o;
  };
  for (let i = 1; i < tokens.length; ++i) {
    const probs = out[i - 1].next.probabilities;
    lps.push(Math.log(probs.get(tokens[i]) ?? 0));
    tops.push(top(probs));
  }
  const generated = [];
  let probs = out[tokens.length - 1].next.probabilities;
  let text = "";
  for (let n = 0; n < maxTokens; ++n) {
    const [best] = probs.entries().next().value;
    if (model.isEogToken(best)) break;
    generated.push({token: best, logprob: Math.log(probs.get(best)), top: top(probs)});
    text = model.detokenize(generated.map((g) => g.token), false, tokens);
    const cut = stop.map((s) => text.indexOf(s)).filter((i) => i >= 0);
    if (cut.length) {
      text = text.slice(0, Math.min(...cut));
      break;
    }
    const next = await seq.controlledEvaluate([[best, {generateNext: {probabilities: true}}]]);
    probs = next[0].next.probabilities;
  }
  return {lps, tops, generated, text};
}

async function completions(body) {
  const prompt = String(body.prompt ?? "");
  const maxTokens = Number(body.max_tokens ?? 16);
  const stop = body.stop === undefined ? [] : [].concat(body.stop);
  const nLogprobs = body.logprobs === undefined || body.logprobs === null ? null : Number(body.logprobs);
  const tokens = tokenizePrompt(prompt);
  const r = await withSequence((seq) => evaluate(seq, tokens, maxTokens, stop, nLogprobs ?? 0));
  const choice = {index: 0, text: (body.echo ? prompt : "") + r.text, finish_reason: r.generated.length >= maxTokens ? "length" : "stop"};
  if (nLogprobs !== null) {
    const lp = {tokens: [], token_logprobs: [], top_logprobs: [], text_offset: []};
    let off = 0;
    const add = (t, l, top) => {
      lp.tokens.push(tokenText(t));
      lp.token_logprobs.push(l);
      lp.top_logprobs.push(top);
      lp.text_offset.push(off);
      off += offsetWidth(t);
    };
    if (body.echo) tokens.forEach((t, i) => add(t, r.lps[i], r.tops[i]));
    else off = prompt.length;
    for (const g of r.generated) add(g.token, g.logprob, g.top);
    choice.logprobs = lp;
  } else {
    choice.logprobs = null;
  }
  return {
    id: "cmpl-" + Date.now(), object: "text_completion", created: Math.floor(Date.now() / 1000), model: opt.name,
    choices: [choice],
    usage: {prompt_tokens: tokens.length, completion_tokens: r.generated.length, total_tokens: tokens.length + r.generated.length},
  };
}

async function chat(body) {
  const msgs = Array.isArray(body.messages) ? body.messages : [];
  const prompt = msgs.map((m) => `${m.role}: ${m.content}\n`).join("") + "assistant:";
  const c = await completions({prompt, max_tokens: body.max_tokens, stop: body.stop});
  const ch = c.choices[0];
  return {...c, object: "chat.completion", choices: [{index: 0, message: {role: "assistant", content: ch.text}, finish_reason: ch.finish_reason}]};
}

function tokenize(body) {
  const text = String(body.content ?? "");
  const tokens = body.add_special ? tokenizePrompt(text) : model.tokenize(text, false);
  if (!body.with_pieces) return {tokens};
  return {tokens: tokens.map((id) => ({id, piece: tokenText(id)}))};
}

const routes = {
  "POST /v1/completions": completions,
  "POST /v1/chat/completions": chat,
  "POST /tokenize": tokenize,
  "GET /v1/models": () => ({object: "list", data: [{id: opt.name, object: "model", owned_by: "evald-tests"}]}),
  "GET /health": () => ({status: "ok"}),
};

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", async () => {
    const send = (code, obj) => {
      const s = JSON.stringify(obj);
      res.writeHead(code, {"content-type": "application/json", "content-length": Buffer.byteLength(s)});
      res.end(s);
    };
    const route = routes[`${req.method} ${req.url.split("?")[0]}`];
    if (!route) return send(404, {error: {message: `no route ${req.method} ${req.url}`, type: "not_found"}});
    let body = {};
    try {
      if (chunks.length) body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch (e) {
      return send(400, {error: {message: "invalid JSON: " + e.message, type: "invalid_request_error"}});
    }
    try {
      send(200, await route(body));
    } catch (e) {
      send(500, {error: {message: String(e && e.stack || e), type: "server_error"}});
    }
  });
});
server.keepAliveTimeout = 30000;
server.listen(opt.port, opt.host, () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
// A test that crashed cannot stop its server: leave with the parent.
const parent = process.ppid;
setInterval(() => process.ppid !== parent && process.exit(0), 500).unref();
