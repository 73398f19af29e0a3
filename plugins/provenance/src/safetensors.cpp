// safetensors: https://github.com/huggingface/safetensors (format section of its README). The
// checks mirror the reference implementation's Metadata::validate, plus no duplicate keys.
#include <algorithm>
#include <charconv>
#include <filesystem>
#include <set>
#include <unordered_map>

#include "json.hpp"
#include "weights.hpp"

namespace evald::prov {

using text::Json;
using text::JsonError;
using text::parse_json;

namespace {

constexpr uint64_t kMaxHeader = 100'000'000;

bool parse_dtype(const std::string& s, DType* out) {
  static const std::unordered_map<std::string, DType> names = {
      {"BOOL", DType::BOOL}, {"U8", DType::U8}, {"I8", DType::I8}, {"U16", DType::U16},
      {"I16", DType::I16}, {"U32", DType::U32}, {"I32", DType::I32}, {"U64", DType::U64},
      {"I64", DType::I64}, {"F16", DType::F16}, {"BF16", DType::BF16}, {"F32", DType::F32},
      {"F64", DType::F64}, {"F8_E4M3", DType::F8_E4M3}, {"F8_E5M2", DType::F8_E5M2},
      {"F8_E8M0", DType::F8_E8M0}, {"F4", DType::F4}, {"F6_E2M3", DType::F6_E2M3},
      {"F6_E3M2", DType::F6_E3M2}, {"C64", DType::C64}};
  auto it = names.find(s);
  if (it == names.end()) return false;
  *out = it->second;
  return true;
}

bool mul_overflows(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_mul_overflow(a, b, out); }

}  // namespace

bool read_safetensors(const std::string& path, WeightSet* out, FormatError* err) {
  auto fail = [&](uint64_t offset, const char* rule, std::string msg) {
    if (err) *err = FormatError{path, offset, rule, std::move(msg)};
    return false;
  };
  FormatError open_err;
  auto file = MappedFile::open(path, &open_err);
  if (!file) {
    if (err) *err = open_err;
    return false;
  }
  const uint64_t size = file->size();
  if (size < 8) return fail(0, "header-too-small", "file is " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | file->data()[i];
  if (n > kMaxHeader) return fail(0, "header-too-large", "header length " + std::to_string(n) + " exceeds 100,000,000 bytes");
  if (n > size - 8) return fail(0, "header-length", "header length " + std::to_string(n) + " runs past the end of the " + std::to_string(size) + "-byte file");
  std::string_view header(reinterpret_cast<const char*>(file->data() + 8), n);
  if (header.empty() || header[0] != '{') return fail(8, "header-start", "header does not start with '{'");
  Json root;
  JsonError jerr;
  if (!parse_json(header, &root, &jerr)) return fail(8 + jerr.offset, "header-json", "header is not valid JSON: " + jerr.message);

  struct Entry {
    const std::string* name;
    DType dtype;
    std::vector<uint64_t> shape;
    uint64_t begin, end;
    uint64_t at;  // header offset of the entry, for errors
  };
  std::vector<Entry> entries;
  WeightSet ws;
  for (const auto& [key, v] : root.members()) {
    uint64_t at = 8 + v.offset();
    if (key == "__metadata__") {
      if (!v.is_object()) return fail(at, "metadata", "__metadata__ must be an object of strings, found " + std::string(v.type_name()));
      for (const auto& [mk, mv] : v.members()) {
        if (!mv.is_string()) return fail(8 + mv.offset(), "metadata", "__metadata__ value \"" + mk + "\" must be a string, found " + mv.type_name());
        ws.metadata[mk] = mv.str();
      }
      continue;
    }
    if (!v.is_object()) return fail(at, "tensor-info", "tensor \"" + key + "\": entry must be an object");
    const Json* dt = v.find("dtype");
    const Json* sh = v.find("shape");
    const Json* off = v.find("data_offsets");
    if (!dt || !dt->is_string()) return fail(at, "tensor-info", "tensor \"" + key + "\": missing or non-string \"dtype\"");
    if (!sh || !sh->is_array()) return fail(at, "tensor-info", "tensor \"" + key + "\": missing or non-array \"shape\"");
    if (!off || !off->is_array() || off->items().size() != 2)
      return fail(at, "tensor-info", "tensor \"" + key + "\": \"data_offsets\" must be [begin, end]");
    Entry e{&key, DType::F32, {}, 0, 0, at};
    if (!parse_dtype(dt->str(), &e.dtype)) return fail(8 + dt->offset(), "dtype", "tensor \"" + key + "\": unknown dtype \"" + dt->str() + "\"");
    for (const Json& d : sh->items()) {
      if (!d.is_uint()) return fail(8 + d.offset(), "tensor-info", "tensor \"" + key + "\": shape entries must be non-negative integers");
      e.shape.push_back(d.as_uint());
    }
    if (!off->items()[0].is_uint() || !off->items()[1].is_uint())
      return fail(8 + off->offset(), "tensor-info", "tensor \"" + key + "\": data_offsets must be non-negative integers");
    e.begin = off->items()[0].as_uint();
    e.end = off->items()[1].as_uint();
    entries.push_back(std::move(e));
  }

  // Offsets must tile [0, data) exactly, in offset order, each the size dtype x shape implies.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expected = 0;
  const uint64_t data_start = 8 + n, data_len = size - 8 - n;
  for (const Entry& e : entries) {
    if (e.begin != expected)
      return fail(e.at, e.begin < expected ? "offsets-overlap" : "offsets-hole",
                  "tensor \"" + *e.name + "\": data starts at " + std::to_string(e.begin) + ", expected " + std::to_string(expected) +
                      (e.begin < expected ? " (overlaps the previous tensor)" : " (leaves a hole)"));
    if (e.end < e.begin) return fail(e.at, "offsets-order", "tensor \"" + *e.name + "\": data_offsets end precedes begin");
    uint64_t numel = 1, bits = 0;
    for (uint64_t d : e.shape)
      if (mul_overflows(numel, d, &numel)) return fail(e.at, "size-overflow", "tensor \"" + *e.name + "\": element count overflows 64 bits");
    if (mul_overflows(numel, dtype_block_bits(e.dtype), &bits))
      return fail(e.at, "size-overflow", "tensor \"" + *e.name + "\": size in bits overflows 64 bits");
    if (bits % 8 != 0) return fail(e.at, "misaligned-slice", "tensor \"" + *e.name + "\": " + std::to_string(numel) + " elements of " + dtype_name(e.dtype) + " do not fill whole bytes");
    if (e.end - e.begin != bits / 8)
      return fail(e.at, "size-mismatch", "tensor \"" + *e.name + "\": data_offsets span " + std::to_string(e.end - e.begin) + " bytes but " +
                      dtype_name(e.dtype) + " x shape needs " + std::to_string(bits / 8));
    if (e.end > data_len)
      return fail(e.at, "data-bounds", "tensor \"" + *e.name + "\": data ends at " + std::to_string(e.end) + ", past the " + std::to_string(data_len) + "-byte data section");
    expected = e.end;
  }
  if (expected != data_len)
    return fail(data_start + expected, "file-length", "file is " + std::to_string(size) + " bytes but 8 + header + tensor data is " + std::to_string(data_start + expected));

  for (const Entry& e : entries) {
    Tensor t;
    t.name = *e.name;
    t.dtype = e.dtype;
    t.shape = e.shape;
    t.file_offset = data_start + e.begin;
    t.data = file->data() + t.file_offset;
    t.nbytes = e.end - e.begin;
    t.file = file;
    ws.tensors.push_back(std::move(t));
  }
  std::sort(ws.tensors.begin(), ws.tensors.end(), [](const Tensor& a, const Tensor& b) { return a.name < b.name; });
  ws.files = {path};
  ws.format = "safetensors";
  ws.total_bytes = size;
  *out = std::move(ws);
  return true;
}

bool read_safetensors_index(const std::string& index_path, WeightSet* out, FormatError* err) {
  auto fail = [&](uint64_t offset, const char* rule, std::string msg) {
    if (err) *err = FormatError{index_path, offset, rule, std::move(msg)};
    return false;
  };
  FormatError ferr;
  auto f = MappedFile::open(index_path, &ferr);
  if (!f) {
    if (err) *err = ferr;
    return false;
  }
  Json root;
  JsonError jerr;
  if (!parse_json(std::string_view(reinterpret_cast<const char*>(f->data()), f->size()), &root, &jerr))
    return fail(jerr.offset, "index-json", "not valid JSON: " + jerr.message);
  const Json* map = root.find("weight_map");
  if (!map || !map->is_object()) return fail(0, "index-weight-map", "no \"weight_map\" object");
  if (map->members().empty()) return fail(map->offset(), "index-weight-map", "\"weight_map\" lists no tensors");
  namespace fs = std::filesystem;
  fs::path dir = fs::path(index_path).parent_path();
  std::map<std::string, std::pair<std::string, uint64_t>> where;  // tensor -> shard, offset of its entry
  std::set<std::string> shards;
  for (const auto& [name, file] : map->members()) {
    if (!file.is_string()) return fail(file.offset(), "index-weight-map", "weight_map[\"" + name + "\"] must be a file name");
    const std::string& s = file.str();
    // Control characters too: a NUL would cut the path short and read another file than named.
    if (s.empty() || s == "." || s == ".." ||
        std::any_of(s.begin(), s.end(), [](char c) { return c == '/' || c == '\\' || uint8_t(c) < 0x20; }))
      return fail(file.offset(), "index-shard-name", "weight_map[\"" + name + "\"] names \"" + s + "\": shards must be plain file names beside the index");
    where[name] = {s, file.offset()};
    shards.insert(s);
  }
  WeightSet all;
  all.format = "safetensors";
  std::map<std::string, std::string> found;  // tensor -> shard it was found in
  for (const std::string& shard : shards) {
    WeightSet ws;
    if (!read_safetensors((dir / shard).string(), &ws, err)) return false;
    for (Tensor& t : ws.tensors) {
      auto w = where.find(t.name);
      if (w == where.end())
        return fail(0, "index-missing-tensor", "shard " + shard + " holds tensor \"" + t.name + "\" that the index does not list");
      if (auto prev = found.find(t.name); prev != found.end())
        return fail(w->second.second, "index-duplicate-tensor", "tensor \"" + t.name + "\" appears in both " + prev->second + " and " + shard);
      if (w->second.first != shard)
        return fail(w->second.second, "index-wrong-shard", "tensor \"" + t.name + "\" is in " + shard + " but the index names " + w->second.first);
      found[t.name] = shard;
      all.tensors.push_back(std::move(t));
    }
    for (auto& [k, v] : ws.metadata) all.metadata[k] = v;
    all.files.push_back(ws.files[0]);
    all.total_bytes += ws.total_bytes;
  }
  for (const auto& [name, entry] : where)
    if (!found.count(name))
      return fail(entry.second, "index-absent-tensor", "the index names tensor \"" + name + "\" in " + entry.first + ", which does not hold it");
  if (const Json* md = root.find("metadata"); md && md->is_object()) {
    if (const Json* ts = md->find("total_size"); ts && ts->is_number()) {
      uint64_t sum = 0;
      for (const Tensor& t : all.tensors) sum += t.nbytes;
      if (!ts->is_uint() || ts->as_uint() != sum) {
        // As written: a negative or huge double has no uint64_t value (converting it is undefined).
        char given[32] = {};
        std::to_chars(given, given + sizeof given - 1, ts->as_double());
        return fail(ts->offset(), "index-total-size", "metadata.total_size is " + (ts->is_uint() ? std::to_string(ts->as_uint()) : std::string(given)) +
                                                            " but the shards' tensors hold " + std::to_string(sum) + " bytes");
      }
    }
  }
  std::sort(all.tensors.begin(), all.tensors.end(), [](const Tensor& a, const Tensor& b) { return a.name < b.name; });
  *out = std::move(all);
  return true;
}

}  // namespace evald::prov
