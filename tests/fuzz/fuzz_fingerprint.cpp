// fuzz_fingerprint: a fingerprint library record (msgpack) through fingerprint_from_value, whole
// and as a library head (sketches reduced to ids). A record that decodes must re-encode to a
// record that decodes to the same fingerprint, every sketch it holds must have the sizes the
// comparison code relies on, and its head must decode with the same ids and no sketch data.
#include <evald/value.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "fingerprint.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using evald::prov::Sketches;
  auto v = evald::msgpack::decode(data, size);
  if (!v) return 0;
  if (auto h = evald::prov::fingerprint_from_value(*v, Sketches::kIdsOnly))
    for (const auto& t : h->tensors)
      for (const auto* s : {&t.by_row, &t.by_col, &t.tok_rows, &t.tok_cols})
        if (!s->data.empty() || !s->gram.empty()) std::abort();
  auto f = evald::prov::fingerprint_from_value(*v);
  if (!f) return 0;
  auto head = evald::prov::fingerprint_from_value(*evald::msgpack::decode(evald::msgpack::encode(evald::prov::to_value(*f, Sketches::kIdsOnly))),
                                                  Sketches::kIdsOnly);
  if (!head || head->tensors.size() != f->tensors.size()) std::abort();
  for (size_t i = 0; i < f->tensors.size(); ++i)
    if (head->tensors[i].by_row.ids != f->tensors[i].by_row.ids || head->tensors[i].tok_cols.ids != f->tensors[i].tok_cols.ids) std::abort();
  for (const auto& t : f->tensors)
    for (const auto* s : {&t.by_row, &t.by_col, &t.tok_rows, &t.tok_cols}) {
      if (s->data.size() != s->ids.size() * evald::prov::kSketchWidth) std::abort();
      for (uint32_t id : s->ids)
        if (id >= s->units) std::abort();
    }
  auto again = evald::prov::fingerprint_from_value(*evald::msgpack::decode(evald::msgpack::encode(evald::prov::to_value(*f))));
  if (f->anchors.size() > size_t(evald::prov::kSketchWidth)) std::abort();
  if (!again || again->tensors.size() != f->tensors.size() || again->name != f->name || again->anchors.size() != f->anchors.size() ||
      again->kind != f->kind)
    std::abort();
  for (size_t i = 0; i < f->tensors.size(); ++i)
    if (again->tensors[i].hashes.exact != f->tensors[i].hashes.exact || again->tensors[i].by_row.gram.size() != f->tensors[i].by_row.gram.size() ||
        again->tensors[i].tok_rows.data.size() != f->tensors[i].tok_rows.data.size() ||
        (!f->tensors[i].tok_rows.data.empty() &&
         std::memcmp(again->tensors[i].tok_rows.data.data(), f->tensors[i].tok_rows.data.data(), f->tensors[i].tok_rows.data.size() * 4) != 0))
      std::abort();
  return 0;
}
