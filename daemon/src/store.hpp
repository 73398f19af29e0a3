// Store: evald's durable state in RocksDB, one column family per kind of record. Every state
// change is a Batch written atomically with the WAL synced. Thread-safe (RocksDB is).
#pragma once

#include <evald/value.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace rocksdb {
struct DBOptions;
class DB;
class ColumnFamilyHandle;
class WriteBatch;
}  // namespace rocksdb

namespace evald::daemon {

enum class Family {
  Meta,
  Competitions,
  Rounds,
  Entrants,
  Pipelines,
  Runs,
  Jobs,
  Messages,
  PluginState,
  Audit,
  Schedules,
  Intake,
  kCount
};

const char* family_name(Family f);

class Store {
 public:
  // A set of writes applied all or nothing by Store::write.
  class Batch {
   public:
    explicit Batch(const Store& store);
    ~Batch();
    Batch(Batch&&) noexcept;
    void put(Family f, std::string_view key, std::string_view value);
    void put(Family f, std::string_view key, const Value& value);
    void del(Family f, std::string_view key);
    size_t count() const;
    bool empty() const { return count() == 0; }
    void clear();

   private:
    friend class Store;
    const Store* store_;
    std::unique_ptr<rocksdb::WriteBatch> b_;
  };

  // Opens (creating if needed) the store under dir. Fails with a clear message when another
  // process holds the data dir (RocksDB's LOCK) or the directory is unusable.
  static Result<std::unique_ptr<Store>> open(const std::filesystem::path& dir);
  // The RocksDB options every store opens with (benchmarks compare against the same).
  static rocksdb::DBOptions db_options();
  ~Store();

  // Applies batch atomically; sync=true waits for the WAL to reach the disk.
  Status write(Batch& batch, bool sync = true);
  Batch batch() const { return Batch(*this); }
  Status put(Family f, std::string_view key, std::string_view value, bool sync = true);
  Status del(Family f, std::string_view key, bool sync = true);
  // nullopt when absent; an error status for I/O failures.
  Result<std::optional<std::string>> get(Family f, std::string_view key) const;
  // Value decoded from msgpack; an error naming the key when the record is corrupt.
  Result<std::optional<Value>> get_value(Family f, std::string_view key) const;
  // Calls fn for each key with the prefix, in key order, until fn returns false. from, when
  // not empty, skips keys before it.
  Status scan(Family f, std::string_view prefix,
              const std::function<bool(std::string_view key, std::string_view value)>& fn,
              std::string_view from = {}) const;
  // The last key with the prefix, if any.
  std::optional<std::pair<std::string, std::string>> last(Family f, std::string_view prefix) const;

  const std::filesystem::path& dir() const { return dir_; }

 private:
  Store() = default;
  rocksdb::ColumnFamilyHandle* cf(Family f) const;

  std::filesystem::path dir_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
};

}  // namespace evald::daemon
