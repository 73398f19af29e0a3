// Test helper: reads fixture models into float tensors and writes (transformed) models back as
// real safetensors files, so tests can build variants the fixtures do not contain.
#pragma once

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "model.hpp"
#include "weights.hpp"

namespace evald::prov::fixture {

struct FloatTensor {
  std::vector<uint64_t> shape;
  std::vector<float> v;
  uint64_t rows() const { return shape.empty() ? 1 : shape[0]; }
  uint64_t cols() const { return shape.size() < 2 ? v.size() : v.size() / shape[0]; }
  float& at(uint64_t r, uint64_t c) { return v[r * cols() + c]; }
};
using FloatModel = std::map<std::string, FloatTensor>;

inline FloatModel load_floats(const std::string& path) {
  Model m;
  FormatError err;
  if (!open_model(path, &m, &err)) throw std::runtime_error(err.to_string());
  FloatModel out;
  for (const Tensor& t : m.weights.tensors) {
    FloatTensor f{t.shape, std::vector<float>(t.numel())};
    if (!to_float(t, 0, t.numel(), f.v.data())) throw std::runtime_error("cannot convert " + t.name);
    out[t.name] = std::move(f);
  }
  return out;
}

// Writes F32 safetensors (plus an optional config.json) into dir/model.safetensors.
inline void write_model(const std::filesystem::path& dir, const FloatModel& m, const std::string& config_json = {}) {
  std::filesystem::create_directories(dir);
  std::string header = "{\"__metadata__\":{\"format\":\"pt\"}";
  uint64_t off = 0;
  for (const auto& [name, t] : m) {
    header += ",\"" + name + "\":{\"dtype\":\"F32\",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); ++i) header += (i ? "," : "") + std::to_string(t.shape[i]);
    header += "],\"data_offsets\":[" + std::to_string(off) + "," + std::to_string(off + t.v.size() * 4) + "]}";
    off += t.v.size() * 4;
  }
  header += "}";
  while (header.size() % 8) header += ' ';
  std::ofstream out(dir / "model.safetensors", std::ios::binary);
  uint64_t n = header.size();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = uint8_t(n >> (8 * i));
  out.write(reinterpret_cast<const char*>(len), 8);
  out << header;
  for (const auto& [name, t] : m) out.write(reinterpret_cast<const char*>(t.v.data()), std::streamsize(t.v.size() * 4));
  if (!config_json.empty()) std::ofstream(dir / "config.json") << config_json;
}

// Writes a GGUF v3 file with F32 tensors (ggml order: ne[0] is the last PyTorch dimension).
inline void write_gguf(const std::filesystem::path& file, const FloatModel& m) {
  std::string out;
  auto u32 = [&](uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); };
  auto u64 = [&](uint64_t v) { out.append(reinterpret_cast<const char*>(&v), 8); };
  auto str = [&](const std::string& s) { u64(s.size()), out += s; };
  out += "GGUF";
  u32(3);
  u64(m.size());
  u64(1);
  str("general.architecture");
  u32(8);
  str("llama");
  uint64_t off = 0;
  for (const auto& [name, t] : m) {
    str(name);
    u32(uint32_t(t.shape.size()));
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) u64(*it);
    u32(0);  // GGML_TYPE_F32
    u64(off);
    off += (t.v.size() * 4 + 31) / 32 * 32;
  }
  out.resize((out.size() + 31) / 32 * 32, '\0');
  for (const auto& [name, t] : m) {
    out.append(reinterpret_cast<const char*>(t.v.data()), t.v.size() * 4);
    out.resize((out.size() + 31) / 32 * 32, '\0');
  }
  std::filesystem::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary) << out;
}

// Renames tensors by replacing substrings, in order.
inline FloatModel rename(const FloatModel& m, const std::vector<std::pair<std::string, std::string>>& subs) {
  FloatModel out;
  for (const auto& [name, t] : m) {
    std::string n = name;
    for (const auto& [from, to] : subs)
      for (size_t p; (p = n.find(from)) != std::string::npos;) n.replace(p, from.size(), to);
    out[n] = t;
  }
  return out;
}

inline void add_noise(FloatTensor& t, double rel, std::mt19937_64& rng) {
  double s = 0, ss = 0;
  for (float x : t.v) s += x, ss += double(x) * x;
  double sd = std::sqrt(std::max(1e-12, ss / double(t.v.size()) - (s / double(t.v.size())) * (s / double(t.v.size()))));
  std::normal_distribution<double> nd(0, rel * sd);
  for (float& x : t.v) x += float(nd(rng));
}

}  // namespace evald::prov::fixture
