#include "library.hpp"

#include <rocksdb/db.h>

namespace evald::prov {

namespace {
constexpr const char* kPrefix = "fp/";
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
  Bytes b = msgpack::encode(to_value(f));
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status s = impl_->db->Put(wo, kPrefix + library_key(f), rocksdb::Slice(reinterpret_cast<const char*>(b.data()), b.size()));
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
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status s = impl_->db->Delete(wo, kPrefix + key);
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
