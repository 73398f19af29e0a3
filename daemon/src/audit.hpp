// AuditLog: append-only, hash-chained record of every state change (who, what, when).
// Each entry carries the hash of the one before; verify() walks the chain and names the
// first entry that does not match. Thread-safe: appends are serialised.
#pragma once

#include "store.hpp"

#include <mutex>

namespace evald::daemon {

struct AuditVerdict {
  bool ok = true;
  uint64_t entries = 0;
  std::string head;   // hash of the last entry
  std::string problem;  // first mismatch, when !ok
};

class AuditLog {
 public:
  // Reads the chain's head from store. store must outlive this.
  static Result<std::unique_ptr<AuditLog>> open(Store& store);

  // Adds one entry to batch and writes batch (sync): the state change and its audit entry
  // land together or not at all.
  Status commit(Store::Batch& batch, std::string_view actor, std::string_view action, const Value& detail);

  AuditVerdict verify() const;
  // Entries from seq on (1-based), at most limit.
  std::vector<Value> list(uint64_t from, size_t limit) const;

 private:
  explicit AuditLog(Store& s) : store_(s) {}
  static std::string entry_hash(const std::string& prev, const Value& body);

  Store& store_;
  mutable std::mutex mu_;
  uint64_t seq_ = 0;
  std::string head_;
};

}  // namespace evald::daemon
