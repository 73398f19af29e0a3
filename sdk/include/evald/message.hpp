// Message and Job: what flows between pipeline stages, and their msgpack form. Header-only.
#pragma once

#include <evald/value.hpp>

#include <string>
#include <vector>

namespace evald {

// Identifies where a message came from: the run, round and entrant it belongs to, the stage
// and job that produced it, and which attempt of that job.
struct Envelope {
  std::string run;
  std::string round;
  std::string entrant;  // empty for a per-round (barrier) job
  std::string stage;
  std::string job;
  int64_t attempt = 1;

  Value to_value() const {
    Value v;
    v.set("run", run);
    v.set("round", round);
    v.set("entrant", entrant);
    v.set("stage", stage);
    v.set("job", job);
    v.set("attempt", attempt);
    return v;
  }
  static Envelope from_value(const Value& v) {
    return {v.get_string("run"), v.get_string("round"), v.get_string("entrant"),
            v.get_string("stage"), v.get_string("job"), v.get_int("attempt", 1)};
  }
};

// One output of a job. seq orders a job's outputs; schema_version versions the payload
// layout of this kind so consumers can refuse what they do not understand.
struct Message {
  Envelope envelope;
  std::string kind;
  int64_t schema_version = 1;
  int64_t seq = 0;
  Value payload;

  Value to_value() const {
    Value v;
    v.set("envelope", envelope.to_value());
    v.set("kind", kind);
    v.set("schema_version", schema_version);
    v.set("seq", seq);
    v.set("payload", payload);
    return v;
  }
  static Result<Message> from_value(const Value& v) {
    auto* env = v.find("envelope");
    if (!env || !env->is_map() || !v.find("kind"))
      return Status::error("message lacks envelope or kind");
    Message m;
    m.envelope = Envelope::from_value(*env);
    m.kind = v.get_string("kind");
    m.schema_version = v.get_int("schema_version", 1);
    m.seq = v.get_int("seq");
    if (auto* p = v.find("payload")) m.payload = *p;
    return m;
  }
};

// An upstream job that failed or was skipped: barrier stages see these so they can mark an
// entrant incomplete instead of counting a missing result as zero.
struct FailedUpstream {
  std::string stage;
  std::string entrant;
  std::string error;
};

// What a plugin is given for one job.
struct Job {
  Envelope envelope;          // this job's identity; emitted messages carry it
  Value entrant;              // {id, name, submission: {...}} for per-entrant jobs, else null
  Value round;                // {id, competition, entrants: [...]} of the run
  std::vector<Message> inputs;  // outputs of the upstream jobs, in stage then entrant order
  std::vector<FailedUpstream> failed_upstream;
  // What the daemon leased to this job, e.g. {gpus: [2, 3]} from its GPU pool for a stage
  // with `gpus: 2`; null when nothing was. Held only while the job runs.
  Value resources;

  // GPU indices leased to this job (empty when none).
  std::vector<int> gpus() const {
    std::vector<int> out;
    if (auto* g = resources.find("gpus"); g && g->is_array())
      for (auto& x : g->as_array())
        if (x.is_int()) out.push_back(int(x.as_int()));
    return out;
  }

  // Inputs of one kind (or one upstream stage when stage is not empty).
  std::vector<const Message*> inputs_of(std::string_view kind, std::string_view stage = {}) const {
    std::vector<const Message*> out;
    for (auto& m : inputs)
      if (m.kind == kind && (stage.empty() || m.envelope.stage == stage)) out.push_back(&m);
    return out;
  }

  Value to_value() const {
    Value v;
    v.set("envelope", envelope.to_value());
    v.set("entrant", entrant);
    v.set("round", round);
    Array in;
    for (auto& m : inputs) in.push_back(m.to_value());
    v.set("inputs", std::move(in));
    Array failed;
    for (auto& f : failed_upstream) {
      Value e;
      e.set("stage", f.stage);
      e.set("entrant", f.entrant);
      e.set("error", f.error);
      failed.push_back(std::move(e));
    }
    v.set("failed_upstream", std::move(failed));
    if (!resources.is_null()) v.set("resources", resources);
    return v;
  }
  static Result<Job> from_value(const Value& v) {
    auto* env = v.find("envelope");
    if (!env || !env->is_map()) return Status::error("job lacks an envelope");
    Job j;
    j.envelope = Envelope::from_value(*env);
    if (auto* e = v.find("entrant")) j.entrant = *e;
    if (auto* r = v.find("round")) j.round = *r;
    if (auto* r = v.find("resources")) j.resources = *r;
    if (auto* in = v.find("inputs"); in && in->is_array())
      for (auto& m : in->as_array()) {
        auto msg = Message::from_value(m);
        if (!msg) return msg.status();
        j.inputs.push_back(std::move(*msg));
      }
    if (auto* f = v.find("failed_upstream"); f && f->is_array())
      for (auto& e : f->as_array())
        j.failed_upstream.push_back({e.get_string("stage"), e.get_string("entrant"), e.get_string("error")});
    return j;
  }
};

// The msgpack of Message::to_value(), built around a payload that is already msgpack (the
// host stores what a plugin emitted without decoding and re-encoding it). Keys in the
// order a Map sorts them, so the bytes are identical.
inline Bytes encode_message(const Envelope& env, std::string_view kind, int64_t schema_version, int64_t seq,
                            const uint8_t* payload, size_t payload_size) {
  Bytes out;
  out.reserve(payload_size + 160);
  msgpack::write_map_header(out, 5);
  msgpack::encode_to(Value("envelope"), out);
  msgpack::encode_to(env.to_value(), out);
  msgpack::encode_to(Value("kind"), out);
  msgpack::encode_to(Value(kind), out);
  msgpack::encode_to(Value("payload"), out);
  out.insert(out.end(), payload, payload + payload_size);
  msgpack::encode_to(Value("schema_version"), out);
  msgpack::encode_to(Value(schema_version), out);
  msgpack::encode_to(Value("seq"), out);
  msgpack::encode_to(Value(seq), out);
  return out;
}

// The msgpack of Job::to_value(), with inputs given as encoded messages.
inline Bytes encode_job(const Envelope& env, const Value& entrant, const Value& round,
                        const std::vector<const Bytes*>& inputs, const std::vector<FailedUpstream>& failed,
                        const Value& resources = Value()) {
  Job shell;
  shell.failed_upstream = failed;
  Bytes out;
  size_t total = 256;
  for (auto* m : inputs) total += m->size();
  out.reserve(total);
  msgpack::write_map_header(out, resources.is_null() ? 5 : 6);
  msgpack::encode_to(Value("entrant"), out);
  msgpack::encode_to(entrant, out);
  msgpack::encode_to(Value("envelope"), out);
  msgpack::encode_to(env.to_value(), out);
  msgpack::encode_to(Value("failed_upstream"), out);
  msgpack::encode_to(*shell.to_value().find("failed_upstream"), out);
  msgpack::encode_to(Value("inputs"), out);
  msgpack::write_array_header(out, inputs.size());
  for (auto* m : inputs) out.insert(out.end(), m->begin(), m->end());
  if (!resources.is_null()) {
    msgpack::encode_to(Value("resources"), out);
    msgpack::encode_to(resources, out);
  }
  msgpack::encode_to(Value("round"), out);
  msgpack::encode_to(round, out);
  return out;
}

}  // namespace evald
