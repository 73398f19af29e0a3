// Real llama.cpp inference for the benchmark tests: node-llama-cpp's prebuilt CPU engine
// (installed by tools/install-deps.sh in TEST_ENGINE_DIR) serving a tiny random GGUF model
// (written once per test program) through tests/benchmark/engine/server.mjs.
#pragma once

#include "toy_server.hpp"

#include <unistd.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace bench_test {

inline const std::string kEngineDir = TEST_ENGINE_DIR;
inline const std::string kEngineSrc = kSource + "/tests/benchmark/engine";

// The test program's scratch directory, with the tiny model written once.
inline const TempDir& scratch() {
  static TempDir dir;
  return dir;
}

inline const std::string& tiny_model() {
  static const std::string path = [] {
    std::string p = scratch() / "tiny.gguf";
    std::string cmd = "python3 " + kEngineSrc + "/make_tiny_gguf.py " + p;
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("cannot write the tiny model: " + cmd);
    return p;
  }();
  return path;
}

inline std::string node() {
  std::string n = kEngineDir + "/bin/node";
  if (access(n.c_str(), X_OK) != 0 || access((kEngineDir + "/node_modules/node-llama-cpp").c_str(), F_OK) != 0)
    throw std::runtime_error("the test engine is not installed in " + kEngineDir + ": run tools/install-deps.sh");
  return n;
}

// One engine server on a free localhost port. One sequence by default: llama.cpp batching
// concurrent requests together changes its numerics (up to 1e-2 on this model), and the tests
// compare with an oracle that evaluates each text alone.
class EngineServer {
 public:
  explicit EngineServer(const std::string& token_text, int sequences = 1)
      : proc_({node(), kEngineSrc + "/server.mjs", "--modules", kEngineDir + "/node_modules", "--model", tiny_model(), "--port", "0",
               "--token-text", token_text, "--sequences", std::to_string(sequences), "--name", "tiny"},
              "listening ") {}
  std::string url() const { return "http://127.0.0.1:" + std::to_string(proc_.port()) + "/v1"; }

 private:
  ServerProcess proc_;
};

}  // namespace bench_test
