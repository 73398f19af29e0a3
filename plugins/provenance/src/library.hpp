// The reference library: fingerprints of open models in a RocksDB database of their own, written
// by `evald-provenance add` and read by the plugin. Evaluation needs only these fingerprints,
// never the open models' weights.
#pragma once

#include <evald/value.hpp>

#include <memory>
#include <string>
#include <vector>

#include "fingerprint.hpp"

namespace evald::prov {

// What `list` shows of a fingerprint, stored beside it so that listing decodes no sketch.
struct LibraryEntry {
  std::string key;  // name@revision
  std::string kind, format, source_hash;
  uint64_t tensors = 0, total_bytes = 0;
  int64_t version = 0;
};

class FingerprintLibrary {
 public:
  // Opens the library at `dir`. read_only opens it shared (several readers, e.g. plugin workers,
  // may hold it at once); create makes a new one when missing. Errors name the directory.
  static Result<std::unique_ptr<FingerprintLibrary>> open(const std::string& dir, bool read_only, bool create);
  ~FingerprintLibrary();

  // Stores `f` under name@revision, replacing an earlier one, with the WAL synced. Not
  // thread-safe with other writers.
  Status put(const Fingerprint& f);
  // The stored record of name@revision (msgpack), for export; an error when absent.
  Result<Bytes> get_record(const std::string& key) const;
  // Stores a record produced by get_record (for import), after checking that it decodes.
  Status put_record(const Bytes& record);
  // Removes name@revision; an error when absent.
  Status remove(const std::string& key);
  // Every fingerprint, in key order. A record that does not decode is an error naming its key.
  Result<std::vector<Fingerprint>> load_all() const;
  // Keys ("name@revision") in order.
  Result<std::vector<std::string>> keys() const;
  // Every fingerprint's entry, in key order, without decoding the fingerprints. A fingerprint
  // stored without an entry (by an older build) is an error naming its key.
  Result<std::vector<LibraryEntry>> entries() const;
  const std::string& dir() const { return dir_; }

 private:
  struct Impl;
  FingerprintLibrary() = default;
  std::unique_ptr<Impl> impl_;
  std::string dir_;
};

// "name@revision", or "name" when the revision is empty.
std::string library_key(const Fingerprint& f);

}  // namespace evald::prov
