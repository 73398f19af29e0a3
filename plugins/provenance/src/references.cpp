#include "references.hpp"

#include <cmath>

namespace evald::prov {

const UnitSketch& sketch_of(const TensorPrint& t, int kind) {
  const UnitSketch* s[4] = {&t.by_row, &t.by_col, &t.tok_rows, &t.tok_cols};
  return *s[kind];
}

// The diagonal holds squared norms, which are positive for any two models and would make
// unrelated ones look alike: only off-diagonal entries count.
std::vector<float> gram_profile(const std::vector<float>& gram) {
  constexpr int G = kGramWidth;
  std::vector<float> out;
  if (gram.empty()) return out;
  out.reserve(G * (G - 1) / 2);
  size_t idx = 0;
  for (int r = 0; r < G; ++r)
    for (int c = r; c < G; ++c, ++idx)
      if (c != r) out.push_back(gram[idx]);
  double mean = 0, norm = 0;
  for (float x : out) mean += x;
  mean /= double(out.size());
  for (float& x : out) x = float(x - mean), norm += double(x) * x;
  float inv = norm > 0 ? float(1 / std::sqrt(norm)) : 0.0f;
  for (float& x : out) x *= inv;
  return out;
}

ScreenProfiles screen_profiles(const TensorPrint& t) {
  ScreenProfiles p;
  for (int k = 0; k < 4; ++k)
    if (!sketch_of(t, k).empty()) p.kind[size_t(k)] = gram_profile(sketch_of(t, k).gram);
  return p;
}

std::unordered_map<uint32_t, std::string> sampled_tokens(const Fingerprint& f) {
  std::unordered_map<uint32_t, std::string> out;
  for (const TensorPrint& t : f.tensors) {
    if (t.role.shape_class != "token") continue;
    for (uint32_t id : t.by_row.ids)
      if (id < f.vocab.size() && !f.vocab[id].empty()) out.emplace(id, f.vocab[id]);
  }
  return out;
}

const std::string* ReferenceSet::sampled_token(size_t r, uint32_t id) const {
  auto it = sampled_[r].find(id);
  return it == sampled_[r].end() ? nullptr : &it->second;
}

void ReferenceSet::add_head(const Fingerprint* head, uint64_t vocab_size, std::unordered_map<uint32_t, std::string> sampled) {
  heads_.push_back(head);
  vocab_sizes_.push_back(vocab_size);
  sampled_.push_back(std::move(sampled));
}

namespace {

class ResidentReferences final : public ReferenceSet {
 public:
  explicit ResidentReferences(const std::vector<const Fingerprint*>& fps) {
    for (const Fingerprint* f : fps) add_head(f, f->vocab.size(), sampled_tokens(*f));
  }
  Result<std::shared_ptr<const TensorPrint>> tensor(size_t r, size_t t) const override {
    // Not owned: an aliasing pointer to the fingerprint's own tensor.
    return std::shared_ptr<const TensorPrint>(std::shared_ptr<const TensorPrint>(), &head(r).tensors[t]);
  }
  Result<ScreenProfiles> profiles(size_t r, size_t t) const override { return screen_profiles(head(r).tensors[t]); }
  Result<std::vector<std::string>> vocabulary(size_t r) const override { return head(r).vocab; }
};

}  // namespace

std::unique_ptr<ReferenceSet> resident_references(const std::vector<const Fingerprint*>& fps) {
  return std::make_unique<ResidentReferences>(fps);
}

}  // namespace evald::prov
