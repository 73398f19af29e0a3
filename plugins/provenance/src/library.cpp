#include "library.hpp"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

namespace evald::prov {

namespace {
constexpr const char* kPrefix = "fp/";
constexpr const char* kEntryPrefix = "entry/";

Bytes entry_record(const Fingerprint& f) {
  Value v;
  v.set("kind", f.kind);
  v.set("format", f.format);
  v.set("source_hash", f.source_hash);
  v.set("tensors", uint64_t(f.tensors.size()));
  v.set("total_bytes", f.total_bytes);
  v.set("version", int64_t(f.version));
  return msgpack::encode(v);
}
// Fingerprints of big models run to tens of MB: decode without the message-sized limits.
msgpack::Limits fingerprint_limits() {
  msgpack::Limits l;
  l.max_input = size_t(4) << 30;
  l.max_string = size_t(2) << 30;
  l.max_elements = size_t(1) << 26;
  return l;
}
}  // namespace

struct FingerprintLibrary::Impl {
  std::unique_ptr<rocksdb::DB> db;
};

std::string library_key(const Fingerprint& f) { return f.revision.empty() ? f.name : f.name + "@" + f.revision; }

Result<std::unique_ptr<FingerprintLibrary>> FingerprintLibrary::open(const std::string& dir, bool read_only, bool create) {
  rocksdb::Options opt;
  opt.create_if_missing = create && !read_only;
  opt.compression = rocksdb::kNoCompression;  // sketches are floats: they do not compress
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = read_only ? rocksdb::DB::OpenForReadOnly(opt, dir, &raw) : rocksdb::DB::Open(opt, dir, &raw);
  if (!s.ok()) return Status::error("fingerprint library " + dir + ": " + s.ToString());
  std::unique_ptr<FingerprintLibrary> lib(new FingerprintLibrary());
  lib->impl_ = std::make_unique<Impl>();
  lib->impl_->db.reset(raw);
  lib->dir_ = dir;
  return lib;
}

FingerprintLibrary::~FingerprintLibrary() = default;

Status FingerprintLibrary::put(const Fingerprint& f) {
  if (f.name.empty()) return Status::error("fingerprint has no name");
  Bytes b = msgpack::encode(to_value(f)), e = entry_record(f);
  rocksdb::WriteBatch batch;
  batch.Put(kPrefix + library_key(f), rocksdb::Slice(reinterpret_cast<const char*>(b.data()), b.size()));
  batch.Put(kEntryPrefix + library_key(f), rocksdb::Slice(reinterpret_cast<const char*>(e.data()), e.size()));
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status s = impl_->db->Write(wo, &batch);
  // Into a table file at once: readers (every plugin worker) would otherwise replay the whole
  // record from the write-ahead log into memory each time they open the library.
  if (s.ok()) s = impl_->db->Flush(rocksdb::FlushOptions());
  if (!s.ok()) return Status::error("fingerprint library " + dir_ + ": " + s.ToString());
  return {};
}

Result<Bytes> FingerprintLibrary::get_record(const std::string& key) const {
  std::string v;
  rocksdb::Status s = impl_->db->Get(rocksdb::ReadOptions(), kPrefix + key, &v);
  if (s.IsNotFound()) return Status::error("no fingerprint \"" + key + "\" in " + dir_);
  if (!s.ok()) return Status::error("fingerprint library " + dir_ + ": " + s.ToString());
  return Bytes(v.begin(), v.end());
}

Status FingerprintLibrary::put_record(const Bytes& record) {
  auto v = msgpack::decode(record, fingerprint_limits());
  if (!v) return Status::error("not a fingerprint record: " + v.error());
  auto f = fingerprint_from_value(*v);
  if (!f) return Status::error("not a fingerprint record: " + f.error());
  return put(*f);
}

Status FingerprintLibrary::remove(const std::string& key) {
  std::string v;
  if (!impl_->db->Get(rocksdb::ReadOptions(), kPrefix + key, &v).ok()) return Status::error("no fingerprint \"" + key + "\" in " + dir_);
  rocksdb::WriteBatch batch;
  batch.Delete(kPrefix + key);
  batch.Delete(kEntryPrefix + key);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status s = impl_->db->Write(wo, &batch);
  if (!s.ok()) return Status::error("fingerprint library " + dir_ + ": " + s.ToString());
  return {};
}

Result<std::vector<std::string>> FingerprintLibrary::keys() const {
  std::vector<std::string> out;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(kPrefix); it->Valid() && it->key().starts_with(kPrefix); it->Next()) out.push_back(it->key().ToString().substr(3));
  if (!it->status().ok()) return Status::error("fingerprint library " + dir_ + ": " + it->status().ToString());
  return out;
}

Result<std::vector<LibraryEntry>> FingerprintLibrary::entries() const {
  auto keys_or = keys();
  if (!keys_or) return Status::error(keys_or.error());
  std::vector<LibraryEntry> out;
  for (const std::string& key : *keys_or) {
    std::string raw;
    rocksdb::Status s = impl_->db->Get(rocksdb::ReadOptions(), kEntryPrefix + key, &raw);
    if (s.IsNotFound()) return Status::error("fingerprint library " + dir_ + ", record \"" + key + "\": no entry (stored by an older build: add it again)");
    if (!s.ok()) return Status::error("fingerprint library " + dir_ + ": " + s.ToString());
    auto v = msgpack::decode(reinterpret_cast<const uint8_t*>(raw.data()), raw.size());
    if (!v || !v->is_map()) return Status::error("fingerprint library " + dir_ + ", entry \"" + key + "\": not a map");
    LibraryEntry e;
    e.key = key;
    e.kind = v->get_string("kind");
    e.format = v->get_string("format");
    e.source_hash = v->get_string("source_hash");
    e.tensors = uint64_t(v->get_int("tensors"));
    e.total_bytes = uint64_t(v->get_int("total_bytes"));
    e.version = v->get_int("version");
    out.push_back(std::move(e));
  }
  return out;
}

Result<std::vector<Fingerprint>> FingerprintLibrary::load_all() const {
  std::vector<Fingerprint> out;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(kPrefix); it->Valid() && it->key().starts_with(kPrefix); it->Next()) {
    std::string key = it->key().ToString().substr(3);
    auto v = msgpack::decode(reinterpret_cast<const uint8_t*>(it->value().data()), it->value().size(), fingerprint_limits());
    if (!v) return Status::error("fingerprint library " + dir_ + ", record \"" + key + "\": " + v.error());
    auto f = fingerprint_from_value(*v);
    if (!f) return Status::error("fingerprint library " + dir_ + ", record \"" + key + "\": " + f.error());
    out.push_back(std::move(*f));
  }
  if (!it->status().ok()) return Status::error("fingerprint library " + dir_ + ": " + it->status().ToString());
  return out;
}

}  // namespace evald::prov
