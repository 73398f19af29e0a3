// The reference library: fingerprints of open models in a RocksDB database of their own, written
// by `evald-provenance add` and read by the plugin. Evaluation needs only these fingerprints,
// never the open models' weights. Each fingerprint is stored in parts (library.cpp names every
// key): a list entry, a head (every tensor's metadata and hashes), its vocabulary, and one
// record per tensor with its sketches plus one with its Gram-screen profiles, so that a scan
// (open_references) keeps only the heads in memory and reads sketches per tensor.
#pragma once

#include <evald/value.hpp>

#include <memory>
#include <string>
#include <vector>

#include "fingerprint.hpp"
#include "references.hpp"

namespace evald::prov {

class LibraryReferences;

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

  // Stores `f` under name@revision, replacing an earlier one, in one synced write batch flushed
  // into a table file. Not thread-safe with other writers.
  Status put(const Fingerprint& f);
  // The stored record of name@revision (msgpack), for export; an error when absent.
  Result<Bytes> get_record(const std::string& key) const;
  // Stores a record produced by get_record (for import), after checking that it decodes; under
  // name@revision instead of the record's own when `name` is not empty.
  Status put_record(const Bytes& record, const std::string& name = "", const std::string& revision = "");
  // Removes name@revision; an error when absent.
  Status remove(const std::string& key);
  // Every fingerprint, whole, in key order. A record that does not decode is an error naming its
  // key. Holds the whole library in memory: for export and tests; scans use open_references.
  Result<std::vector<Fingerprint>> load_all() const;
  // Keys ("name@revision") in order.
  Result<std::vector<std::string>> keys() const;
  // Every fingerprint's entry, in key order, without decoding the fingerprints. A fingerprint
  // stored without an entry (by an older build) is an error naming its key.
  Result<std::vector<LibraryEntry>> entries() const;
  const std::string& dir() const { return dir_; }

 private:
  friend class LibraryReferences;
  struct Impl;
  // The fingerprint stored under `key`, reassembled from its parts.
  Result<Fingerprint> load(const std::string& key) const;
  FingerprintLibrary() = default;
  std::unique_ptr<Impl> impl_;
  std::string dir_;
};

// The library at `dir`, opened read-only, as a scan's reference set: the heads of every
// fingerprint are read at once (an error names a record that is missing or does not decode);
// sketches, profiles and vocabularies are read when asked for.
Result<std::unique_ptr<ReferenceSet>> open_references(const std::string& dir);

}  // namespace evald::prov
