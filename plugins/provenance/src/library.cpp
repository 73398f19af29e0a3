#include "library.hpp"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <cstring>

namespace evald::prov {

namespace {

// Every key of the library. A fingerprint's key ("name@revision") may hold any character but
// NUL, which separates it from a tensor's index.
namespace keys {
constexpr std::string_view kEntry = "entry/", kHead = "head/", kVocab = "vocab/", kTensor = "tensor/", kScreen = "screen/";
// Written by the first layout (one whole record per fingerprint), which this build does not read.
constexpr std::string_view kOldRecord = "fp/";
std::string entry(const std::string& key) { return std::string(kEntry) + key; }
std::string head(const std::string& key) { return std::string(kHead) + key; }
std::string vocab(const std::string& key) { return std::string(kVocab) + key; }
std::string tensor_prefix(std::string_view kind, const std::string& key) { return std::string(kind) + key + '\0'; }
std::string tensor(std::string_view kind, const std::string& key, size_t t) {
  char idx[16];
  std::snprintf(idx, sizeof idx, "%08zu", t);
  return tensor_prefix(kind, key) + idx;
}
}  // namespace keys

rocksdb::Slice slice(const Bytes& b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

// Fingerprints of big models run to tens of MB: decode without the message-sized limits.
msgpack::Limits fingerprint_limits() {
  msgpack::Limits l;
  l.max_input = size_t(4) << 30;
  l.max_string = size_t(2) << 30;
  l.max_elements = size_t(1) << 26;
  return l;
}

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

// The head: the fingerprint with its sketches reduced to ids and sizes and without its
// vocabulary, plus the vocabulary's size and the texts of the token rows it sampled.
Bytes head_record(const Fingerprint& f) {
  Fingerprint h;
  h.anchors = f.anchors, h.version = f.version, h.kind = f.kind, h.width = f.width, h.name = f.name, h.revision = f.revision;
  h.source_hash = f.source_hash, h.format = f.format, h.files = f.files, h.total_bytes = f.total_bytes, h.config = f.config;
  h.tokenizer_source = f.tokenizer_source, h.claims = f.claims;
  Value fv = to_value(h, Sketches::kIdsOnly);
  Value tensors = Value(Array{});
  for (const TensorPrint& t : f.tensors) tensors.push_back(to_value(t, Sketches::kIdsOnly));
  fv.set("tensors", tensors);
  Value v;
  v.set("fingerprint", fv);
  v.set("vocab_size", uint64_t(f.vocab.size()));
  Value tokens = Value(Map{});
  for (const auto& [id, text] : sampled_tokens(f)) tokens.set(std::to_string(id), text);
  v.set("tokens", tokens);
  return msgpack::encode(v);
}

Bytes vocab_record(const Fingerprint& f) {
  Value v = Value(Array{});
  for (const std::string& s : f.vocab) v.push_back(s);
  return msgpack::encode(v);
}

// The Gram screen's profiles, raw: per kind a uint32 count, then that many floats.
Bytes screen_record(const TensorPrint& t) {
  ScreenProfiles p = screen_profiles(t);
  Bytes out;
  for (const std::vector<float>& v : p.kind) {
    uint32_t n = uint32_t(v.size());
    size_t at = out.size();
    out.resize(at + 4 + v.size() * 4);
    std::memcpy(out.data() + at, &n, 4);
    if (n) std::memcpy(out.data() + at + 4, v.data(), v.size() * 4);
  }
  return out;
}

Result<ScreenProfiles> parse_screen(std::string_view raw, const std::string& where) {
  ScreenProfiles p;
  size_t at = 0;
  for (std::vector<float>& v : p.kind) {
    uint32_t n = 0;
    if (raw.size() - at < 4) return Status::error(where + ": truncated at byte " + std::to_string(at));
    std::memcpy(&n, raw.data() + at, 4);
    at += 4;
    if (n != 0 && n != uint32_t(kGramWidth * (kGramWidth - 1) / 2))
      return Status::error(where + ": a profile of " + std::to_string(n) + " values at byte " + std::to_string(at - 4));
    if (raw.size() - at < size_t(n) * 4) return Status::error(where + ": truncated at byte " + std::to_string(at));
    v.resize(n);
    if (n) std::memcpy(v.data(), raw.data() + at, size_t(n) * 4);
    at += size_t(n) * 4;
  }
  if (at != raw.size()) return Status::error(where + ": " + std::to_string(raw.size() - at) + " bytes after the profiles");
  return p;
}

Result<std::vector<std::string>> parse_vocab(std::string_view raw, const std::string& where) {
  auto v = msgpack::decode(reinterpret_cast<const uint8_t*>(raw.data()), raw.size(), fingerprint_limits());
  if (!v || !v->is_array()) return Status::error(where + ": not a vocabulary");
  std::vector<std::string> out;
  out.reserve(v->as_array().size());
  for (const Value& s : v->as_array()) out.push_back(s.is_string() ? s.as_string() : "");
  return out;
}

Result<TensorPrint> parse_tensor(std::string_view raw, const std::string& where) {
  auto v = msgpack::decode(reinterpret_cast<const uint8_t*>(raw.data()), raw.size(), fingerprint_limits());
  if (!v) return Status::error(where + ": " + v.error());
  auto t = tensor_from_value(*v);
  if (!t) return Status::error(where + ": " + t.error());
  return t;
}

struct Head {
  Fingerprint fp;
  uint64_t vocab_size = 0;
  std::unordered_map<uint32_t, std::string> tokens;
};

Result<Head> parse_head(std::string_view raw, const std::string& where) {
  auto v = msgpack::decode(reinterpret_cast<const uint8_t*>(raw.data()), raw.size(), fingerprint_limits());
  if (!v) return Status::error(where + ": " + v.error());
  const Value* fp = v->find("fingerprint");
  const Value* tokens = v->find("tokens");
  if (!fp || !tokens || !tokens->is_map() || !v->find("vocab_size") || !v->find("vocab_size")->is_int())
    return Status::error(where + ": not a fingerprint head");
  auto f = fingerprint_from_value(*fp, Sketches::kIdsOnly);
  if (!f) return Status::error(where + ": " + f.error());
  Head h{std::move(*f), uint64_t(v->get_int("vocab_size")), {}};
  for (const auto& [id, text] : tokens->as_map()) {
    char* end = nullptr;
    unsigned long long n = std::strtoull(id.c_str(), &end, 10);
    if (id.empty() || *end || n >= h.vocab_size || !text.is_string()) return Status::error(where + ".tokens: bad entry \"" + id + "\"");
    h.tokens.emplace(uint32_t(n), text.as_string());
  }
  return h;
}

}  // namespace

struct FingerprintLibrary::Impl {
  std::unique_ptr<rocksdb::DB> db;

  // The value under `key`; `found` false when absent. Errors name the library and the key.
  Status get(const std::string& dir, const std::string& key, std::string* out, bool* found = nullptr) const {
    rocksdb::Status s = db->Get(rocksdb::ReadOptions(), key, out);
    if (found) *found = s.ok();
    if (s.IsNotFound() && found) return {};
    if (s.IsNotFound()) return Status::error("fingerprint library " + dir + ": record \"" + printable(key) + "\" is missing");
    if (!s.ok()) return Status::error("fingerprint library " + dir + ", record \"" + printable(key) + "\": " + s.ToString());
    return {};
  }
  static std::string printable(const std::string& key) {
    std::string out = key;
    for (char& c : out)
      if (c == '\0') c = '#';
    return out;
  }
};

Result<std::unique_ptr<FingerprintLibrary>> FingerprintLibrary::open(const std::string& dir, bool read_only, bool create) {
  rocksdb::Options opt;
  opt.create_if_missing = create && !read_only;
  opt.compression = rocksdb::kNoCompression;  // sketches are floats: they do not compress
  opt.write_buffer_size = size_t(16) << 20;  // a big fingerprint flushes as it is written
  // Readers fetch one tensor's records at a time; a small cache keeps a scan's memory flat.
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(size_t(8) << 20);
  opt.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = read_only ? rocksdb::DB::OpenForReadOnly(opt, dir, &raw) : rocksdb::DB::Open(opt, dir, &raw);
  if (!s.ok()) return Status::error("fingerprint library " + dir + ": " + s.ToString());
  std::unique_ptr<FingerprintLibrary> lib(new FingerprintLibrary());
  lib->impl_ = std::make_unique<Impl>();
  lib->impl_->db.reset(raw);
  lib->dir_ = dir;
  std::unique_ptr<rocksdb::Iterator> it(raw->NewIterator(rocksdb::ReadOptions()));
  it->Seek(rocksdb::Slice(keys::kOldRecord.data(), keys::kOldRecord.size()));
  if (it->Valid() && it->key().starts_with(rocksdb::Slice(keys::kOldRecord.data(), keys::kOldRecord.size())))
    return Status::error("fingerprint library " + dir + " was written by an older evald-provenance (one record per fingerprint, e.g. \"" +
                         it->key().ToString() + "\"): build it again with this one's add");
  if (!it->status().ok()) return Status::error("fingerprint library " + dir + ": " + it->status().ToString());
  return lib;
}

FingerprintLibrary::~FingerprintLibrary() = default;

Status FingerprintLibrary::put(const Fingerprint& f) {
  if (f.name.empty()) return Status::error("fingerprint has no name");
  const std::string key = library_key(f);
  auto failed = [&](const rocksdb::Status& s) { return Status::error("fingerprint library " + dir_ + ": " + s.ToString()); };
  rocksdb::WriteOptions synced;
  synced.sync = true;
  // The entry goes first and comes back last, so a reader (which lists entries) never sees a
  // fingerprint half replaced; a put cut short leaves the key absent, and the next put of it
  // clears what was written. Tensors go in batches of a few MB: one batch for a 7B model's
  // fingerprint would hold it several times over in memory.
  rocksdb::WriteBatch batch;
  batch.Delete(keys::entry(key));
  for (std::string_view kind : {keys::kTensor, keys::kScreen}) {
    std::string from = keys::tensor_prefix(kind, key), to = from;
    to.back() = '\1';
    batch.DeleteRange(from, to);
  }
  if (rocksdb::Status s = impl_->db->Write(synced, &batch); !s.ok()) return failed(s);
  batch.Clear();
  for (size_t t = 0; t < f.tensors.size(); ++t) {
    batch.Put(keys::tensor(keys::kTensor, key, t), slice(msgpack::encode(to_value(f.tensors[t]))));
    batch.Put(keys::tensor(keys::kScreen, key, t), slice(screen_record(f.tensors[t])));
    if (batch.GetDataSize() >= (size_t(4) << 20) || t + 1 == f.tensors.size()) {
      if (rocksdb::Status s = impl_->db->Write(rocksdb::WriteOptions(), &batch); !s.ok()) return failed(s);
      batch.Clear();
    }
  }
  batch.Put(keys::head(key), slice(head_record(f)));
  batch.Put(keys::vocab(key), slice(vocab_record(f)));
  batch.Put(keys::entry(key), slice(entry_record(f)));
  rocksdb::Status s = impl_->db->Write(synced, &batch);
  // Into a table file at once: readers (every plugin worker) would otherwise replay the whole
  // fingerprint from the write-ahead log into memory each time they open the library.
  if (s.ok()) s = impl_->db->Flush(rocksdb::FlushOptions());
  return s.ok() ? Status() : failed(s);
}

Result<Fingerprint> FingerprintLibrary::load(const std::string& key) const {
  std::string raw;
  if (Status s = impl_->get(dir_, keys::head(key), &raw); !s) return s;
  auto head = parse_head(raw, "fingerprint library " + dir_ + ", record \"" + keys::head(key) + "\"");
  if (!head) return head.status();
  Fingerprint f = std::move(head->fp);
  for (size_t t = 0; t < f.tensors.size(); ++t) {
    std::string k = keys::tensor(keys::kTensor, key, t);
    if (Status s = impl_->get(dir_, k, &raw); !s) return s;
    auto tp = parse_tensor(raw, "fingerprint library " + dir_ + ", record \"" + Impl::printable(k) + "\"");
    if (!tp) return tp.status();
    f.tensors[t] = std::move(*tp);
  }
  if (Status s = impl_->get(dir_, keys::vocab(key), &raw); !s) return s;
  auto vocab = parse_vocab(raw, "fingerprint library " + dir_ + ", record \"" + keys::vocab(key) + "\"");
  if (!vocab) return vocab.status();
  f.vocab = std::move(*vocab);
  return f;
}

Result<Bytes> FingerprintLibrary::get_record(const std::string& key) const {
  std::string raw;
  bool found = false;
  if (Status s = impl_->get(dir_, keys::entry(key), &raw, &found); !s) return s;
  if (!found) return Status::error("no fingerprint \"" + key + "\" in " + dir_);
  auto f = load(key);
  if (!f) return f.status();
  return msgpack::encode(to_value(*f));
}

Status FingerprintLibrary::put_record(const Bytes& record, const std::string& name, const std::string& revision) {
  auto v = msgpack::decode(record, fingerprint_limits());
  if (!v) return Status::error("not a fingerprint record: " + v.error());
  auto f = fingerprint_from_value(*v);
  if (!f) return Status::error("not a fingerprint record: " + f.error());
  if (!name.empty()) f->name = name, f->revision = revision;
  return put(*f);
}

Status FingerprintLibrary::remove(const std::string& key) {
  std::string v;
  bool found = false;
  if (Status s = impl_->get(dir_, keys::entry(key), &v, &found); !s) return s;
  if (!found) return Status::error("no fingerprint \"" + key + "\" in " + dir_);
  rocksdb::WriteBatch batch;
  batch.Delete(keys::entry(key));
  batch.Delete(keys::head(key));
  batch.Delete(keys::vocab(key));
  for (std::string_view kind : {keys::kTensor, keys::kScreen}) {
    std::string from = keys::tensor_prefix(kind, key), to = from;
    to.back() = '\1';
    batch.DeleteRange(from, to);
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status s = impl_->db->Write(wo, &batch);
  if (!s.ok()) return Status::error("fingerprint library " + dir_ + ": " + s.ToString());
  return {};
}

Result<std::vector<std::string>> FingerprintLibrary::keys() const {
  std::vector<std::string> out;
  const rocksdb::Slice prefix(keys::kEntry.data(), keys::kEntry.size());
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) out.push_back(it->key().ToString().substr(prefix.size()));
  if (!it->status().ok()) return Status::error("fingerprint library " + dir_ + ": " + it->status().ToString());
  return out;
}

Result<std::vector<LibraryEntry>> FingerprintLibrary::entries() const {
  std::vector<LibraryEntry> out;
  const rocksdb::Slice prefix(keys::kEntry.data(), keys::kEntry.size());
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    LibraryEntry e;
    e.key = it->key().ToString().substr(prefix.size());
    auto v = msgpack::decode(reinterpret_cast<const uint8_t*>(it->value().data()), it->value().size());
    if (!v || !v->is_map()) return Status::error("fingerprint library " + dir_ + ", record \"" + keys::entry(e.key) + "\": not a map");
    e.kind = v->get_string("kind");
    e.format = v->get_string("format");
    e.source_hash = v->get_string("source_hash");
    e.tensors = uint64_t(v->get_int("tensors"));
    e.total_bytes = uint64_t(v->get_int("total_bytes"));
    e.version = v->get_int("version");
    out.push_back(std::move(e));
  }
  if (!it->status().ok()) return Status::error("fingerprint library " + dir_ + ": " + it->status().ToString());
  return out;
}

Result<std::vector<Fingerprint>> FingerprintLibrary::load_all() const {
  auto ks = keys();
  if (!ks) return ks.status();
  std::vector<Fingerprint> out;
  for (const std::string& key : *ks) {
    auto f = load(key);
    if (!f) return f.status();
    out.push_back(std::move(*f));
  }
  return out;
}

// A scan's view of a library: heads resident, the rest read per call. RocksDB reads are
// thread-safe, so every method is.
class LibraryReferences final : public ReferenceSet {
 public:
  static Result<std::unique_ptr<ReferenceSet>> open(const std::string& dir) {
    auto lib = FingerprintLibrary::open(dir, true, false);
    if (!lib) return lib.status();
    std::unique_ptr<LibraryReferences> set(new LibraryReferences(std::move(*lib)));
    auto ks = set->lib_->keys();
    if (!ks) return ks.status();
    set->keys_ = std::move(*ks);
    set->heads_.reserve(set->keys_.size());  // add_head keeps pointers into heads_
    for (const std::string& key : set->keys_) {
      std::string raw;
      if (Status s = set->impl().get(dir, keys::head(key), &raw); !s) return s;
      auto head = parse_head(raw, "fingerprint library " + dir + ", record \"" + keys::head(key) + "\"");
      if (!head) return head.status();
      set->heads_.push_back(std::move(head->fp));
      set->add_head(&set->heads_.back(), head->vocab_size, std::move(head->tokens));
    }
    return std::unique_ptr<ReferenceSet>(std::move(set));
  }

  Result<std::shared_ptr<const TensorPrint>> tensor(size_t r, size_t t) const override {
    std::string k = keys::tensor(keys::kTensor, keys_[r], t), raw;
    if (Status s = impl().get(lib_->dir(), k, &raw); !s) return s;
    std::string where = "fingerprint library " + lib_->dir() + ", record \"" + FingerprintLibrary::Impl::printable(k) + "\"";
    auto tp = parse_tensor(raw, where);
    if (!tp) return tp.status();
    // The head and the tensor record are written in one batch: a mismatch is a damaged store.
    const TensorPrint& h = head(r).tensors[t];
    if (tp->name != h.name || tp->by_row.ids != h.by_row.ids || tp->by_col.ids != h.by_col.ids || tp->tok_rows.ids != h.tok_rows.ids ||
        tp->tok_cols.ids != h.tok_cols.ids)
      return Status::error(where + ": holds tensor \"" + tp->name + "\", which does not match its head (\"" + h.name + "\")");
    return std::shared_ptr<const TensorPrint>(std::make_shared<TensorPrint>(std::move(*tp)));
  }

  Result<ScreenProfiles> profiles(size_t r, size_t t) const override {
    std::string k = keys::tensor(keys::kScreen, keys_[r], t);
    rocksdb::PinnableSlice raw;
    rocksdb::Status s = impl().db->Get(rocksdb::ReadOptions(), impl().db->DefaultColumnFamily(), k, &raw);
    std::string where = "fingerprint library " + lib_->dir() + ", record \"" + FingerprintLibrary::Impl::printable(k) + "\"";
    if (s.IsNotFound()) return Status::error(where + " is missing");
    if (!s.ok()) return Status::error(where + ": " + s.ToString());
    return parse_screen(std::string_view(raw.data(), raw.size()), where);
  }

  Result<std::vector<std::string>> vocabulary(size_t r) const override {
    std::string k = keys::vocab(keys_[r]), raw;
    if (Status s = impl().get(lib_->dir(), k, &raw); !s) return s;
    return parse_vocab(raw, "fingerprint library " + lib_->dir() + ", record \"" + k + "\"");
  }

 private:
  explicit LibraryReferences(std::unique_ptr<FingerprintLibrary> lib) : lib_(std::move(lib)) {}
  const FingerprintLibrary::Impl& impl() const { return *lib_->impl_; }

  // Constant after open().
  std::unique_ptr<FingerprintLibrary> lib_;
  std::vector<std::string> keys_;
  std::vector<Fingerprint> heads_;
};

Result<std::unique_ptr<ReferenceSet>> open_references(const std::string& dir) { return LibraryReferences::open(dir); }

}  // namespace evald::prov
