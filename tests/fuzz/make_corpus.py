#!/usr/bin/env python3
"""Writes the seed corpora under tests/fuzz/corpus/<target>/ (hand-made valid and invalid
inputs). Needs only the Python standard library: it carries a tiny msgpack encoder that
writes the same canonical forms as evald's (maps sorted by key, smallest headers).

    python3 tests/fuzz/make_corpus.py      # (re)writes the seed files, leaves others alone
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def pack(v):
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v <= 0x7F:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack(">b", v)
        if -(2**31) <= v < 2**31:
            return b"\xd2" + struct.pack(">i", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        return _hdr(len(b), 0xA0, 31, 0xD9, 0xDA, 0xDB) + b
    if isinstance(v, (bytes, bytearray)):
        n = len(v)
        if n <= 0xFF:
            return b"\xc4" + bytes([n]) + v
        if n <= 0xFFFF:
            return b"\xc5" + struct.pack(">H", n) + v
        return b"\xc6" + struct.pack(">I", n) + v
    if isinstance(v, list):
        return _hdr(len(v), 0x90, 15, None, 0xDC, 0xDD) + b"".join(pack(e) for e in v)
    if isinstance(v, dict):
        out = _hdr(len(v), 0x80, 15, None, 0xDE, 0xDF)
        for k in sorted(v):
            out += pack(k) + pack(v[k])
        return out
    raise TypeError(type(v))


def _hdr(n, fix, fix_max, c8, c16, c32):
    if n <= fix_max:
        return bytes([fix | n])
    if c8 is not None and n <= 0xFF:
        return bytes([c8, n])
    if n <= 0xFFFF:
        return bytes([c16]) + struct.pack(">H", n)
    return bytes([c32]) + struct.pack(">I", n)


ENVELOPE = {"run": "r-1", "round": "final", "entrant": "alice", "stage": "read", "job": "j-7", "attempt": 1}
MESSAGE = {"envelope": ENVELOPE, "kind": "score", "schema_version": 1, "seq": 0, "payload": {"value": 2.5}}
JOB = {
    "envelope": ENVELOPE,
    "entrant": {"id": "alice", "name": "Alice", "submission": {"path": "/tmp/a.txt"}},
    "round": {"id": "final", "competition": "c1", "entrants": ["alice", "bob"]},
    "inputs": [MESSAGE, dict(MESSAGE, kind="log", payload="text")],
    "failed_upstream": [{"stage": "read", "entrant": "bob", "error": "timeout"}],
}
SCHEMA = [
    {"key": "scale", "type": "number", "description": "multiplier", "required": False, "default": 1.0, "min": 0.0},
    {"key": "mode", "type": "string", "description": "how", "required": False, "choices": ["fast", "exact"]},
    {"key": "files", "type": "list", "description": "inputs", "required": True, "max": 4.0},
]

PIPELINE = """name: demo
stages:
  - id: read
    plugin: file-value
    per: entrant
    config: {scale: 2}
  - id: total
    plugin: sum
    per: round
    after: [read]
"""

CORPUS = {
    "fuzz_msgpack": {
        "nil": pack(None),
        "true": pack(True),
        "ints": pack([0, 127, -1, -32, -33, 128, 65535, 2**31 - 1, -(2**31), 2**40, -(2**40)]),
        "uints": b"\x94\xcc\xff\xcd\xff\xff\xce\xff\xff\xff\xff\xcf\x7f\xff\xff\xff\xff\xff\xff\xff",
        "uint64-over": b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff",
        "signed": b"\x94\xd0\x80\xd1\x80\x00\xd2\x80\x00\x00\x00\xd3\x80\x00\x00\x00\x00\x00\x00\x00",
        "floats": b"\x93\xca\x3f\xc0\x00\x00\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00\xcb\x80\x00\x00\x00\x00\x00\x00\x00",
        "strings": pack(["", "a", "x" * 31, "y" * 32, "z" * 300]),
        "str8": b"\xd9\x03abc",
        "bin": pack([b"", b"\x00\x01\x02", bytes(300)]),
        "map": pack({"a": 1, "b": [1, 2, {"c": None}], "d": {"e": "f"}}),
        "map16": b"\xde\x00\x01\xa1k\xc0",
        "array32": b"\xdd\x00\x00\x00\x02\x01\x02",
        "job": pack(JOB),
        "deep": b"\x91" * 70 + b"\xc0",
        "bad-truncated": b"\xdb\x00\x00\x10\x00ab",
        "bad-huge-array": b"\xdd\xff\xff\xff\xff\x00",
        "bad-int-key": b"\x81\x01\x02",
        "bad-dup-key": b"\x82\xa1a\x01\xa1a\x02",
        "bad-ext": b"\xd4\x01\x02",
        "bad-trailing": b"\xc0\xc0",
    },
    "fuzz_message": {
        "job": pack(JOB),
        "message": pack(MESSAGE),
        "schema": pack(SCHEMA),
        "schema-and-config": pack({"schema": SCHEMA, "config": {"scale": 3, "files": ["a", "b"]}}),
        "fixed-ok": pack({"must": "x", "scale": 2, "count": 5, "mode": "exact", "name": "abc",
                          "verbose": True, "files": ["a"], "extra": {"k": 1}}),
        "fixed-bad": pack({"must": 1, "scale": -1.0, "count": 1000, "mode": "slow", "name": "",
                           "files": list(range(20)), "unknown": None}),
        "job-bad-input": pack({"envelope": ENVELOPE, "inputs": [{"kind": "x"}]}),
        "schema-bad": pack([{"key": "k", "type": "float"}]),
        "not-a-map": pack([1, 2, 3]),
    },
    "fuzz_pipeline_yaml": {
        "demo.yaml": PIPELINE.encode(),
        "full.yaml": b"""name: full
description: every field
stages:
  - id: a
    plugin: file-value
    per: entrant
    timeout_s: 30
    retries: 0
    workers: 4
    config:
      scale: 1.5
      path: "quoted"
      list: [1, 2.5, true, null, ~, "s"]
      nested: {x: {y: [z]}}
  - id: b
    plugin: sum
    per: round
    after: a
""",
        "cycle.yaml": b"name: c\nstages:\n  - {id: a, plugin: p, after: [b]}\n  - {id: b, plugin: p, after: [a]}\n",
        "bad-fields.yaml": b"name: .bad\nextra: 1\nstages:\n  - id: a\n    plugin: [x]\n    per: sometimes\n    workers: 0\n    foo: bar\n  - 7\n",
        "empty-stages.yaml": b"name: e\nstages: []\n",
        "anchors.yaml": b"name: a\nstages:\n  - &s {id: a, plugin: p, config: &c {k: 1}}\n  - {id: b, plugin: p, config: *c}\n",
        "malformed.yaml": b"name: [unclosed\nstages:\n  - id: a\n   plugin: b\n",
        "scalars.yaml": b"- 1\n- -7\n- 1e3\n- 0x10\n- .inf\n- 'quoted'\n- \"dq\"\n- True\n- NULL\n- 9223372036854775808\n",
        "not-a-map.yaml": b"just a string\n",
    },
    "fuzz_daemon_config": {
        "full.yaml": b"""data_dir: /var/lib/evald
plugin_dirs:
  - /usr/lib/evald/plugins
  - /opt/plugins
control: tcp://127.0.0.1:5555
control_group: evald
log_level: debug
log_file: /var/log/evald.log
drain_timeout_s: 60
pipelines: [/etc/evald/demo.yaml]
""",
        "minimal.yaml": b"data_dir: data\n",
        "ipc.yaml": b"control: ipc:///run/evald/control.sock\nplugin_dirs: ~\npipelines: []\n",
        "empty.yaml": b"",
        "bad-key.yaml": b"data_dir: x\nnot_a_key: 1\n",
        "bad-types.yaml": b"data_dir: [a, b]\ndrain_timeout_s: soon\n",
        "bad-level.yaml": b"log_level: loud\n",
        "bad-timeout.yaml": b"drain_timeout_s: -5\n",
        "bad-control.yaml": b"control: udp://x\n",
        "long-ipc.yaml": b"control: ipc:///" + b"p" * 120 + b"\n",
        "empty-data-dir.yaml": b"data_dir: ''\n",
        "malformed.yaml": b"data_dir: [\n",
        "list.yaml": b"- a\n- b\n",
    },
    "fuzz_control_request": {
        "ping": pack({"op": "ping", "actor": "fuzz"}),
        "plugins-list": pack({"op": "plugins.list"}),
        "plugin-help": pack({"op": "plugin.help", "name": "sum"}),
        "pipeline-validate": pack({"op": "pipeline.validate", "yaml": PIPELINE, "source": "demo.yaml"}),
        "pipeline-load-yaml": pack({"op": "pipeline.load", "yaml": PIPELINE, "actor": "fuzz"}),
        "pipeline-load-missing": pack({"op": "pipeline.load", "path": "/nonexistent/p.yaml"}),
        "pipeline-list": pack({"op": "pipeline.list"}),
        "pipeline-reload": pack({"op": "pipeline.reload", "actor": "fuzz"}),
        "competition-create": pack({"op": "competition.create", "id": "c1", "name": "Cup", "actor": "fuzz"}),
        "competition-create-bad-id": pack({"op": "competition.create", "id": "../etc"}),
        "competition-list": pack({"op": "competition.list"}),
        "round-create": pack({"op": "round.create", "competition": "c1", "id": "r1", "pipeline": "demo"}),
        "round-show": pack({"op": "round.show", "competition": "c1", "id": "r1"}),
        "round-list": pack({"op": "round.list", "competition": "c1"}),
        "entrant-add": pack({"op": "entrant.add", "competition": "c1", "id": "alice", "name": "Alice",
                             "submission": {"path": "/tmp/a"}}),
        "entrant-add-round": pack({"op": "entrant.add", "competition": "c1", "id": "bob", "round": "r1"}),
        "entrant-list": pack({"op": "entrant.list", "competition": "c1"}),
        "run-start": pack({"op": "run.start", "competition": "c1", "round": "r1", "actor": "fuzz"}),
        "run-status": pack({"op": "run.status", "run": "r-1"}),
        "run-list": pack({"op": "run.list"}),
        "run-outputs": pack({"op": "run.outputs", "run": "r-1", "stage": "read"}),
        "audit-verify": pack({"op": "audit.verify"}),
        "audit-list": pack({"op": "audit.list", "from": 1, "limit": 10}),
        "audit-list-bad": pack({"op": "audit.list", "from": -1, "limit": 10**9}),
        "shutdown": pack({"op": "shutdown", "actor": "fuzz"}),
        "competition-define": pack({"op": "competition.define", "source": "c.yaml", "yaml":
            "id: c2\nrounds:\n  - {id: r1, pipeline: demo, weights: {score: 40}, advance: {top: 2}}\n"
            "  - {id: r2, pipeline: demo, from: r1, additional_call: true, advance: {min_total: 1.5}}\n"}),
        "competition-define-bad-rules": pack({"op": "competition.define", "yaml":
            "id: c3\nrounds:\n  - {id: r1, pipeline: demo, weights: {score: -1}, advance: {top: x, other: 1}}\n"}),
        "round-create-rules": pack({"op": "round.create", "competition": "c1", "id": "r2", "pipeline": "demo",
                                    "from_round": "r1", "rules": {"weights": {"a": 1}, "advance": {"top": 1}},
                                    "additional_call": False}),
        "call-open": pack({"op": "call.open", "competition": "c1", "round": "r2", "closes": "2030-01-01T00:00:00Z"}),
        "call-close": pack({"op": "call.close", "competition": "c1", "round": "r2"}),
        "run-start-reuse": pack({"op": "run.start", "competition": "c1", "round": "r1", "reuse_run": "run-000001",
                                 "rerun": ["read", 7]}),
        "round-decide": pack({"op": "round.decide", "competition": "c1", "round": "r1", "reason": "x"}),
        "competition-report": pack({"op": "competition.report", "competition": "c1"}),
        "unknown-op": pack({"op": "nope"}),
        "op-not-string": pack({"op": 5}),
        "not-a-map": pack(["ping"]),
        "malformed": b"\x82\xa2op",
        "empty": b"",
    },
}


def main():
    for target, files in CORPUS.items():
        d = os.path.join(HERE, "corpus", target)
        os.makedirs(d, exist_ok=True)
        for name, data in files.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        print(f"{target}: {len(files)} seeds")


if __name__ == "__main__":
    main()
