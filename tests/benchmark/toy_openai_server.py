#!/usr/bin/env python3
"""A deterministic OpenAI-compatible server for the benchmark plugin's tests (stdlib only).

A test double, kept for what no real engine can be scripted to do: faults (429, 5xx, bodies
that are not JSON or too large, slow answers, closed connections), degenerate answers (flat
logprobs), and a model that knows a chosen share of the items, so accuracies, caching and
resume can be checked against numbers known in advance. Its echo spells tokens its own way;
how real servers' echoes are read is tested on real llama.cpp (engine_test.cpp).

Toy model: it reads the item files of the suites it is given and "knows" an item when
sha256(item id) falls in the first --know fraction; a known item is answered right, an
unknown multiple-choice item always gets "A" (a position bias, so option rotation exposes it)
and an unknown text item gets "unknown". Completions with echo=true and logprobs return
prompt logprobs that favour the letter it would answer.

The model name picks a behaviour:
  toy           completions and chat, prompt logprobs on echo
  toy-nolp      ignores logprobs (returns "logprobs": null): clients must generate
  toy-flat      every prompt token's logprob is -1.0: every choice ties (a broken echo)
  toy-429       first attempt of each distinct request body: 429 with Retry-After: 0
  toy-500       always 500
  toy-500once   first attempt of each distinct body: 500
  toy-nonjson   200 with a body that is not JSON
  toy-slow      sleeps --slow seconds before answering
  toy-huge      a 4 MiB body
  toy-close     answers, then closes the connection (no keep-alive)
GET /stats gives {"requests": n, "by_model": {...}}; POST /reset zeroes it.
Prints "PORT <n>" on stdout once listening (--port 0 picks a free port).
"""
import argparse
import hashlib
import http.server
import json
import os
import re
import sys
import threading
import time

LOCK = threading.Lock()
STATS = {"requests": 0, "by_model": {}}
SEEN = set()
ITEMS = []  # (text, item) longest first


def known(item_id, fraction):
    h = int(hashlib.sha256(item_id.encode()).hexdigest()[:8], 16)
    return (h % 1000) < fraction * 1000


def load_items(dirs):
    for d in dirs:
        for root, _, files in os.walk(d):
            for f in sorted(files):
                if not f.endswith(".jsonl"):
                    continue
                with open(os.path.join(root, f), encoding="utf-8") as fh:
                    for n, line in enumerate(fh, 1):
                        line = line.strip()
                        if not line:
                            continue
                        try:
                            it = json.loads(line)
                        except ValueError:
                            continue
                        if not isinstance(it, dict):
                            continue
                        it.setdefault("id", os.path.splitext(f)[0] + ":" + str(n))
                        text = it.get("question") or it.get("prompt")
                        if isinstance(text, str):
                            ITEMS.append((text, it))
    ITEMS.sort(key=lambda t: -len(t[0]))


def find_item(prompt):
    # The item asked last: few-shot examples come before it.
    best, best_pos = None, -1
    for text, it in ITEMS:
        pos = prompt.rfind(text)
        if pos > best_pos:
            best, best_pos = it, pos
    return best, best_pos


def answer_letter(prompt, it, pos, fraction):
    """The letter the toy model picks for the final question of prompt."""
    if it is None or "choices" not in it:
        return "A"
    if not known(str(it["id"]), fraction):
        return "A"
    ans = it["answer"]
    idx = ans if isinstance(ans, int) else ord(ans.upper()) - ord("A")
    right = it["choices"][idx]
    # Find the letter the prompt shows the right choice under (rotations move it).
    tail = prompt[pos:]
    for m in re.finditer(r"(?m)^\(?([A-Z])[.)]\s*(.*)$", tail):
        if m.group(2).strip() == right.strip():
            return m.group(1)
    return "A"


def text_answer(it, fraction):
    if it is None or not known(str(it["id"]), fraction):
        return "unknown"
    if "answers" in it or "answer" in it:
        a = it.get("answers", it.get("answer"))
        a = a[0] if isinstance(a, list) else a
        return "  " + str(a).upper() + ".\nBecause I know."  # normalisation must cope
    if "contains" in it:
        c = it["contains"]
        return "Here: " + (" and ".join(c) if isinstance(c, list) else c)
    if "target" in it:
        return it["target"]
    return "unknown"


def tokens_of(text):
    """Whitespace-led chunks with code point offsets, like a BPE tokenizer's ' word' tokens."""
    out = []
    for m in re.finditer(r"\s*\S+|\s+$", text):
        out.append((m.group(0), m.start()))
    return out


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send(self, code, body, ctype="application/json", extra=None, close=False):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/stats":
            with LOCK:
                self.send(200, json.dumps(STATS))
        else:
            self.send(404, '{"error":"not found"}')

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(n)
        if self.path == "/reset":
            with LOCK:
                STATS["requests"] = 0
                STATS["by_model"] = {}
                SEEN.clear()
            self.send(200, "{}")
            return
        try:
            req = json.loads(raw)
        except ValueError:
            self.send(400, '{"error":"bad json"}')
            return
        model = req.get("model", "toy")
        with LOCK:
            STATS["requests"] += 1
            STATS["by_model"][model] = STATS["by_model"].get(model, 0) + 1
            first = raw not in SEEN
            SEEN.add(raw)
        if model == "toy-429" and first:
            self.send(429, '{"error":"rate limited"}', extra={"Retry-After": "0"})
            return
        if model == "toy-500" or (model == "toy-500once" and first):
            self.send(500, '{"error":"internal"}')
            return
        if model == "toy-nonjson":
            self.send(200, "<html>gateway says hello</html>", ctype="text/html")
            return
        if model == "toy-slow":
            time.sleep(ARGS.slow)
        if model == "toy-huge":
            self.send(200, '{"pad":"' + "x" * (4 << 20) + '"}')
            return
        chat = self.path.endswith("/chat/completions")
        if chat:
            prompt = req["messages"][-1]["content"]
        elif self.path.endswith("/completions"):
            prompt = req["prompt"]
        else:
            self.send(404, '{"error":"unknown path"}')
            return
        it, pos = find_item(prompt)
        mc = it is not None and "choices" in it
        resp = {"id": "cmpl-toy", "object": "chat.completion" if chat else "text_completion", "model": model}
        if req.get("echo") and not chat:
            # Score the continuation: the prompt ends with " <letter>".
            m = re.search(r"([A-Z])\s*$", prompt)
            context = prompt[: m.start(1)] if m else prompt
            it2, pos2 = find_item(context)
            pick = answer_letter(context, it2, pos2, ARGS.know)
            toks = tokens_of(prompt)
            lps = [None] + [-1.0] * (len(toks) - 1)
            if m and toks and model != "toy-flat":
                lps[-1] = -0.1 if m.group(1) == pick else -4.0
            lp = None if model == "toy-nolp" else {
                "tokens": [t for t, _ in toks], "token_logprobs": lps,
                "text_offset": [o for _, o in toks], "top_logprobs": None}
            text = prompt
            if req.get("max_tokens", 16) > 0:
                text += " ok"
                if lp:
                    lp["tokens"].append(" ok")
                    lp["token_logprobs"].append(-0.5)
                    lp["text_offset"].append(len(prompt))
            resp["choices"] = [{"index": 0, "text": text, "logprobs": lp, "finish_reason": "length"}]
            completion = 1 if req.get("max_tokens", 16) > 0 else 0
        else:
            if mc:
                out = "The answer is " + answer_letter(prompt, it, pos, ARGS.know) + "."
            else:
                out = text_answer(it, ARGS.know)
            completion = len(out.split())
            if chat:
                resp["choices"] = [{"index": 0, "message": {"role": "assistant", "content": out}, "finish_reason": "stop"}]
            else:
                resp["choices"] = [{"index": 0, "text": out, "logprobs": None, "finish_reason": "stop"}]
        resp["usage"] = {"prompt_tokens": len(prompt.split()), "completion_tokens": completion,
                         "total_tokens": len(prompt.split()) + completion}
        self.send(200, json.dumps(resp, ensure_ascii=False), close=(model == "toy-close"))


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--know", type=float, default=0.75)
    p.add_argument("--slow", type=float, default=2.0)
    p.add_argument("--suites", nargs="*", default=[])
    ARGS = p.parse_args()
    load_items(ARGS.suites)
    srv = Server(("127.0.0.1", ARGS.port), Handler)
    print("PORT", srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
