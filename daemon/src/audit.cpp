#include "audit.hpp"

#include "util.hpp"

namespace evald::daemon {

namespace {
const std::string kGenesis(64, '0');

Value body_of(const Value& entry) {
  Value b;
  for (auto* k : {"seq", "time", "actor", "action", "detail"})
    if (auto* v = entry.find(k)) b.set(k, *v);
  return b;
}
}  // namespace

std::string AuditLog::entry_hash(const std::string& prev, const Value& body) {
  Bytes b = msgpack::encode(body);
  std::string data = prev;
  data.append(reinterpret_cast<const char*>(b.data()), b.size());
  return sha256_hex(data);
}

Result<std::unique_ptr<AuditLog>> AuditLog::open(Store& store) {
  std::unique_ptr<AuditLog> log(new AuditLog(store));
  log->head_ = kGenesis;
  if (auto last = store.last(Family::Audit, "")) {
    auto v = msgpack::decode(last->second);
    if (!v) return Status::error("audit log head " + last->first + " is corrupt: " + v.error());
    log->seq_ = uint64_t(v->get_int("seq"));
    log->head_ = v->get_string("hash");
  }
  return log;
}

Status AuditLog::commit(Store::Batch& batch, std::string_view actor, std::string_view action, const Value& detail) {
  std::lock_guard lock(mu_);
  Value e;
  e.set("seq", int64_t(seq_ + 1));
  e.set("time", now_iso8601());
  e.set("actor", std::string(actor));
  e.set("action", std::string(action));
  e.set("detail", detail);
  std::string hash = entry_hash(head_, e);
  e.set("prev", head_);
  e.set("hash", hash);
  batch.put(Family::Audit, zero_pad(seq_ + 1, 16), e);
  if (auto st = store_.write(batch, true); !st) return st;
  ++seq_;
  head_ = hash;
  return {};
}

AuditVerdict AuditLog::verify() const {
  AuditVerdict r;
  std::string prev = kGenesis;
  uint64_t expect = 1;
  auto st = store_.scan(Family::Audit, "", [&](std::string_view key, std::string_view raw) {
    auto v = msgpack::decode(raw);
    if (!v) {
      r.ok = false;
      r.problem = "entry " + std::string(key) + " is not valid msgpack: " + v.error();
      return false;
    }
    auto seq = uint64_t(v->get_int("seq"));
    if (seq != expect || key != zero_pad(seq, 16)) {
      r.ok = false;
      r.problem = "entry " + std::string(key) + ": expected sequence " + std::to_string(expect) + ", found " + std::to_string(seq);
      return false;
    }
    if (v->get_string("prev") != prev) {
      r.ok = false;
      r.problem = "entry " + std::to_string(seq) + ": prev hash does not match entry " + std::to_string(seq - 1);
      return false;
    }
    std::string h = entry_hash(prev, body_of(*v));
    if (h != v->get_string("hash")) {
      r.ok = false;
      r.problem = "entry " + std::to_string(seq) + ": content does not match its hash (edited after it was written)";
      return false;
    }
    prev = h;
    ++expect;
    ++r.entries;
    return true;
  });
  if (!st) {
    r.ok = false;
    r.problem = st.message();
  }
  r.head = prev;
  return r;
}

std::vector<Value> AuditLog::list(uint64_t from, size_t limit) const {
  std::vector<Value> out;
  std::string start = zero_pad(from == 0 ? 1 : from, 16);
  (void)store_.scan(
      Family::Audit, "",
      [&](std::string_view, std::string_view raw) {
        if (auto v = msgpack::decode(raw)) out.push_back(std::move(*v));
        return out.size() < limit;
      },
      start);
  return out;
}

}  // namespace evald::daemon
