#include "store.hpp"

#include <rocksdb/db.h>

#include <algorithm>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

namespace evald::daemon {

namespace {
const char* const kFamilyNames[] = {"meta",     "competitions", "rounds",   "entrants",
                                    "pipelines", "runs",        "jobs",     "messages",
                                    "plugin_state", "audit",    "schedules", "intake"};
static_assert(std::size(kFamilyNames) == size_t(Family::kCount));

rocksdb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }
}  // namespace

const char* family_name(Family f) { return kFamilyNames[size_t(f)]; }

Store::Batch::Batch(const Store& store) : store_(&store), b_(std::make_unique<rocksdb::WriteBatch>()) {}
Store::Batch::~Batch() = default;
Store::Batch::Batch(Batch&&) noexcept = default;

void Store::Batch::put(Family f, std::string_view key, std::string_view value) {
  b_->Put(store_->cf(f), slice(key), slice(value));
}
void Store::Batch::put(Family f, std::string_view key, const Value& value) {
  Bytes b = msgpack::encode(value);
  b_->Put(store_->cf(f), slice(key), rocksdb::Slice(reinterpret_cast<const char*>(b.data()), b.size()));
}
void Store::Batch::del(Family f, std::string_view key) { b_->Delete(store_->cf(f), slice(key)); }
size_t Store::Batch::count() const { return size_t(b_->Count()); }
void Store::Batch::clear() { b_->Clear(); }

rocksdb::DBOptions Store::db_options() {
  rocksdb::DBOptions opts;
  opts.create_if_missing = true;
  opts.create_missing_column_families = true;
  opts.max_background_jobs = 2;
  opts.keep_log_file_num = 4;
  return opts;
}

Result<std::unique_ptr<Store>> Store::open(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::error("data dir " + dir.string() + ": cannot create: " + ec.message());

  rocksdb::DBOptions opts = db_options();
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  cfs.emplace_back(rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions());
  for (auto* n : kFamilyNames) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());

  std::unique_ptr<Store> s(new Store());
  s->dir_ = dir;
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  auto st = rocksdb::DB::Open(opts, (dir / "db").string(), cfs, &handles, &db);
  if (!st.ok()) {
    std::string msg = st.ToString();
    if (st.IsIOError() && msg.find("lock") != std::string::npos)
      return Status::error("data dir " + dir.string() +
                           " is in use by another evald process (RocksDB lock held: " + msg + ")");
    return Status::error("data dir " + dir.string() + ": cannot open store: " + msg);
  }
  s->db_.reset(db);
  s->handles_ = std::move(handles);
  return s;
}

Store::~Store() {
  if (!db_) return;
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
  db_->Close();
}

rocksdb::ColumnFamilyHandle* Store::cf(Family f) const { return handles_[size_t(f) + 1]; }

Status Store::write(Batch& batch, bool sync) {
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  auto st = db_->Write(wo, batch.b_.get());
  if (!st.ok()) return Status::error("store write failed (" + dir_.string() + "): " + st.ToString());
  return {};
}

Status Store::put(Family f, std::string_view key, std::string_view value, bool sync) {
  Batch b(*this);
  b.put(f, key, value);
  return write(b, sync);
}

Status Store::del(Family f, std::string_view key, bool sync) {
  Batch b(*this);
  b.del(f, key);
  return write(b, sync);
}

Result<std::optional<std::string>> Store::get(Family f, std::string_view key) const {
  std::string v;
  auto st = db_->Get(rocksdb::ReadOptions(), cf(f), slice(key), &v);
  if (st.IsNotFound()) return std::optional<std::string>();
  if (!st.ok()) return Status::error("store read of " + std::string(family_name(f)) + "/" + std::string(key) + ": " + st.ToString());
  return std::optional<std::string>(std::move(v));
}

Result<std::optional<Value>> Store::get_value(Family f, std::string_view key) const {
  auto raw = get(f, key);
  if (!raw) return raw.status();
  if (!*raw) return std::optional<Value>();
  auto v = msgpack::decode(**raw);
  if (!v) return Status::error("corrupt record " + std::string(family_name(f)) + "/" + std::string(key) + ": " + v.error());
  return std::optional<Value>(std::move(*v));
}

Status Store::scan(Family f, std::string_view prefix,
                   const std::function<bool(std::string_view, std::string_view)>& fn, std::string_view from) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf(f)));
  for (it->Seek(slice(std::max(prefix, from))); it->Valid(); it->Next()) {
    auto k = it->key();
    if (!k.starts_with(slice(prefix))) break;
    if (!fn(std::string_view(k.data(), k.size()), std::string_view(it->value().data(), it->value().size()))) break;
  }
  if (!it->status().ok()) return Status::error("store scan of " + std::string(family_name(f)) + ": " + it->status().ToString());
  return {};
}

std::optional<std::pair<std::string, std::string>> Store::last(Family f, std::string_view prefix) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf(f)));
  std::string upper(prefix);
  upper.push_back('\xff');
  it->SeekForPrev(upper);
  if (!it->Valid() || !it->key().starts_with(slice(prefix))) return std::nullopt;
  return std::make_pair(it->key().ToString(), it->value().ToString());
}

}  // namespace evald::daemon
