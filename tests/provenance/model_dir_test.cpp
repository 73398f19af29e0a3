// open_model on model directories as they come from the Hugging Face hub: weights (one file or an
// index and shards), config.json, a tokenizer (tokenizer.json, or vocab.json + merges.txt) and a
// model card whose front matter declares lineage. Declared lineage comes back as claims; a
// malformed file fails the whole open with an error naming that file.
#include "model.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <vector>

namespace evald::prov {
namespace {

namespace fs = std::filesystem;

// A valid one-tensor safetensors file: `name`, F32 [1] = 1.0.
std::string tiny_safetensors(const std::string& name) {
  std::string header = "{\"" + name + "\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
  while (header.size() % 8) header += ' ';
  std::string out(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  const float one = 1.0f;
  return out + header + std::string(reinterpret_cast<const char*>(&one), 4);
}

class ModelDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("model_dir_test_" + std::to_string(::getpid()) + "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& bytes) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
    return path;
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  Model opened(const std::string& p = "") {
    Model m;
    FormatError err;
    EXPECT_TRUE(open_model(p.empty() ? dir_.string() : p, &m, &err)) << err.to_string();
    return m;
  }

  // Opens a directory that must be refused; checks rule and file and that `out` is left alone.
  FormatError refused(const std::string& rule, const std::string& file) {
    Model m;
    m.path = "untouched";
    m.vocab = {"keep"};
    FormatError err;
    EXPECT_FALSE(open_model(dir_.string(), &m, &err));
    EXPECT_EQ(err.rule, rule) << err.to_string();
    EXPECT_EQ(err.file, file) << err.to_string();
    EXPECT_FALSE(err.message.empty());
    EXPECT_EQ(m.path, "untouched");
    EXPECT_EQ(m.vocab, std::vector<std::string>{"keep"});
    EXPECT_TRUE(m.claims.empty());
    return err;
  }

  fs::path dir_;
};

bool has_claim(const Model& m, const std::string& source, const std::string& key, const std::string& value) {
  for (const LineageClaim& c : m.claims)
    if (c.source == source && c.key == key && c.value == value) return true;
  return false;
}

TEST_F(ModelDirTest, SafetensorsConfigAndBpeTokenizer) {
  write("model.safetensors", tiny_safetensors("w"));
  write("config.json", R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "rms_norm_eps": 1e-05,
    "tie_word_embeddings": false, "rope_scaling": null, "_name_or_path": "org/base-7b",
    "text_config": {"vocab_size": 32000, "deeper": {"a": {"b": 1}}}})");
  write("tokenizer.json", R"({"version": "1.0", "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]},
    "added_tokens": [{"id": 3, "content": "<s>", "special": true}, {"id": 5, "content": "</s>"}]})");
  const Model m = opened();
  EXPECT_EQ(m.path, dir_.string());
  EXPECT_EQ(m.weights.format, "safetensors");
  ASSERT_EQ(m.weights.tensors.size(), 1u);
  EXPECT_EQ(m.weights.tensors[0].name, "w");
  EXPECT_EQ(m.config.at("hidden_size"), "64");
  EXPECT_EQ(m.config.at("architectures"), "[LlamaForCausalLM]");
  EXPECT_EQ(m.config.at("tie_word_embeddings"), "false");
  EXPECT_EQ(m.config.at("text_config.vocab_size"), "32000");
  EXPECT_EQ(std::stod(m.config.at("rms_norm_eps")), 1e-05);
  EXPECT_EQ(m.config.count("rope_scaling"), 0u);
  EXPECT_EQ(m.config.count("text_config.deeper.a.b"), 0u);  // flattened three levels deep only
  EXPECT_EQ(m.vocab, (std::vector<std::string>{"a", "b", "ab", "<s>", "", "</s>"}));
  EXPECT_EQ(m.tokenizer_source, path("tokenizer.json"));
  ASSERT_EQ(m.claims.size(), 1u);
  EXPECT_TRUE(has_claim(m, path("config.json"), "_name_or_path", "org/base-7b"));
}

// Small epsilons are common (BERT's layer_norm_eps is 1e-12): a fixed six decimals would record 0.
TEST_F(ModelDirTest, ConfigNumbersKeepTheirValue) {
  write("model.safetensors", tiny_safetensors("w"));
  write("config.json", R"({"layer_norm_eps": 1e-12, "initializer_range": 0.02, "rope_theta": 500000.0, "scale": -1.5e300})");
  const Model m = opened();
  EXPECT_EQ(std::stod(m.config.at("layer_norm_eps")), 1e-12) << m.config.at("layer_norm_eps");
  EXPECT_EQ(std::stod(m.config.at("initializer_range")), 0.02) << m.config.at("initializer_range");
  EXPECT_EQ(std::stod(m.config.at("rope_theta")), 500000.0) << m.config.at("rope_theta");
  EXPECT_EQ(std::stod(m.config.at("scale")), -1.5e300) << m.config.at("scale");
}

TEST_F(ModelDirTest, UnigramArrayVocab) {
  write("model.safetensors", tiny_safetensors("w"));
  write("tokenizer.json", R"({"model": {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["\u2581a", -1.5], ["b", -2]]}})");
  const Model m = opened();
  EXPECT_EQ(m.vocab, (std::vector<std::string>{"<unk>", "\xe2\x96\x81" "a", "b"}));
}

TEST_F(ModelDirTest, VocabJsonAndMerges) {
  write("model.safetensors", tiny_safetensors("w"));
  write("vocab.json", R"({"hello": 1, "world": 0})");
  Model m = opened();
  EXPECT_EQ(m.vocab, (std::vector<std::string>{"world", "hello"}));
  EXPECT_EQ(m.tokenizer_source, path("vocab.json"));
  write("merges.txt", "#version: 0.2\nh e\n");
  m = opened();
  EXPECT_EQ(m.tokenizer_source, path("vocab.json") + " + merges.txt");
}

TEST_F(ModelDirTest, TokenizerJsonWinsOverVocabJson) {
  write("model.safetensors", tiny_safetensors("w"));
  write("tokenizer.json", R"({"model": {"vocab": {"t": 0}}})");
  write("vocab.json", R"({"v": 0})");
  const Model m = opened();
  EXPECT_EQ(m.vocab, std::vector<std::string>{"t"});
  EXPECT_EQ(m.tokenizer_source, path("tokenizer.json"));
}

TEST_F(ModelDirTest, NoTokenizerIsFine) {
  write("model.safetensors", tiny_safetensors("w"));
  const Model m = opened();
  EXPECT_TRUE(m.vocab.empty());
  EXPECT_TRUE(m.tokenizer_source.empty());
  EXPECT_TRUE(m.claims.empty());
  EXPECT_TRUE(m.config.empty());
}

TEST_F(ModelDirTest, ModelCardBaseModelScalar) {
  write("model.safetensors", tiny_safetensors("w"));
  write("README.md", "---\nlicense: mit\nbase_model: org/base-7b\n---\n# A model\n\nbase_model: not/this\n");
  const Model m = opened();
  ASSERT_EQ(m.claims.size(), 1u);
  EXPECT_TRUE(has_claim(m, path("README.md"), "base_model", "org/base-7b"));
}

TEST_F(ModelDirTest, ModelCardBaseModelList) {
  write("model.safetensors", tiny_safetensors("w"));
  write("config.json", R"({"base_model": "org/from-config"})");
  write("README.md", "---\nbase_model:\n- org/one\n- org/two\nbase_model_relation: merge\n---\n");
  const Model m = opened();
  EXPECT_EQ(m.claims.size(), 4u);
  EXPECT_TRUE(has_claim(m, path("README.md"), "base_model", "org/one"));
  EXPECT_TRUE(has_claim(m, path("README.md"), "base_model", "org/two"));
  EXPECT_TRUE(has_claim(m, path("README.md"), "base_model_relation", "merge"));
  EXPECT_TRUE(has_claim(m, path("config.json"), "base_model", "org/from-config"));
}

// Cards written on Windows: the front matter's last line must not keep its '\r'.
TEST_F(ModelDirTest, ModelCardWithCrlfLineEndings) {
  write("model.safetensors", tiny_safetensors("w"));
  write("README.md", "---\r\nbase_model:\r\n- org/one\r\n- org/two\r\n---\r\n");
  Model m = opened();
  EXPECT_EQ(m.claims.size(), 2u);
  EXPECT_TRUE(has_claim(m, path("README.md"), "base_model", "org/two"));
  write("README.md", "---\r\nlicense: mit\r\nbase_model: org/base-7b\r\n---\r\n# Card\r\n");
  m = opened();
  ASSERT_EQ(m.claims.size(), 1u);
  EXPECT_EQ(m.claims[0].value, "org/base-7b");
}

TEST_F(ModelDirTest, ModelCardWithoutFrontMatterClaimsNothing) {
  write("model.safetensors", tiny_safetensors("w"));
  write("README.md", "# base_model: org/x\n");
  EXPECT_TRUE(opened().claims.empty());
  write("README.md", "---\n- a list, not a map\n---\n");
  EXPECT_TRUE(opened().claims.empty());
  write("README.md", "---\nbase_model: org/never-closed\n");
  EXPECT_TRUE(opened().claims.empty());
}

TEST_F(ModelDirTest, OpensASingleFileAndReadsTheFilesBesideIt) {
  const std::string weights = write("weights.safetensors", tiny_safetensors("w"));
  write("config.json", R"({"_name_or_path": "org/base"})");
  const Model m = opened(weights);
  EXPECT_EQ(m.weights.files, std::vector<std::string>{weights});
  EXPECT_TRUE(has_claim(m, path("config.json"), "_name_or_path", "org/base"));
  // The one .safetensors in a directory, whatever its name.
  EXPECT_EQ(opened().weights.files, std::vector<std::string>{weights});
}

TEST_F(ModelDirTest, OpensAShardedModelThroughItsIndex) {
  write("model-00001-of-00002.safetensors", tiny_safetensors("a"));
  write("model-00002-of-00002.safetensors", tiny_safetensors("b"));
  const std::string index = write("model.safetensors.index.json", R"({"metadata": {"total_size": 8}, "weight_map": {
    "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}})");
  Model m = opened();
  ASSERT_EQ(m.weights.tensors.size(), 2u);
  EXPECT_EQ(m.weights.files.size(), 2u);
  m = opened(index);
  EXPECT_EQ(m.weights.tensors.size(), 2u);
}

// --- errors ---

TEST_F(ModelDirTest, NoSuchPath) {
  Model m;
  FormatError err;
  EXPECT_FALSE(open_model(path("absent"), &m, &err));
  EXPECT_EQ(err.rule, "open");
  EXPECT_EQ(err.file, path("absent"));
}

TEST_F(ModelDirTest, NoWeights) {
  write("config.json", "{}");
  write("README.md", "---\nbase_model: org/x\n---\n");
  const FormatError err = refused("model-files", dir_.string());
  EXPECT_NE(err.message.find("no model.safetensors"), std::string::npos) << err.message;
}

TEST_F(ModelDirTest, SeveralSafetensorsWithoutIndex) {
  write("model-00001-of-00002.safetensors", tiny_safetensors("a"));
  write("model-00002-of-00002.safetensors", tiny_safetensors("b"));
  const FormatError err = refused("model-files", dir_.string());
  EXPECT_NE(err.message.find("model.safetensors.index.json"), std::string::npos) << err.message;
}

TEST_F(ModelDirTest, MalformedWeights) {
  write("model.safetensors", tiny_safetensors("w") + "x");
  refused("file-length", path("model.safetensors"));
}

TEST_F(ModelDirTest, MalformedConfigJson) {
  write("model.safetensors", tiny_safetensors("w"));
  write("config.json", R"({"hidden_size": 64,})");
  FormatError err = refused("json", path("config.json"));
  EXPECT_EQ(err.offset, 19u);
  EXPECT_NE(err.message.find("JSON"), std::string::npos) << err.message;
  write("config.json", R"({"a": 1, "a": 2})");
  err = refused("json", path("config.json"));
  EXPECT_EQ(err.offset, 9u);
  write("config.json", R"(["not", "an", "object"])");
  err = refused("config", path("config.json"));
  EXPECT_EQ(err.offset, 0u);
}

TEST_F(ModelDirTest, MalformedTokenizerJson) {
  write("model.safetensors", tiny_safetensors("w"));
  write("tokenizer.json", R"({"model": {"vocab": {"a": 0, "a": 1}}})");
  FormatError err = refused("json", path("tokenizer.json"));
  EXPECT_EQ(err.offset, 29u);
  EXPECT_NE(err.message.find("\"a\""), std::string::npos) << err.message;

  std::string text = R"({"model": {"vocab": {"a": 0, "b": -1}}})";
  write("tokenizer.json", text);
  err = refused("tokenizer-id", path("tokenizer.json"));
  EXPECT_EQ(err.offset, text.find("-1"));
  EXPECT_NE(err.message.find("\"b\""), std::string::npos) << err.message;

  text = R"({"model": {"vocab": {"a": 10000001}}})";
  write("tokenizer.json", text);
  err = refused("tokenizer-id", path("tokenizer.json"));
  EXPECT_EQ(err.offset, text.find("10000001"));

  text = R"({"model": {"type": "Unigram", "vocab": [["a", 0.0], [1, 0.0]]}})";
  write("tokenizer.json", text);
  err = refused("tokenizer-vocab", path("tokenizer.json"));
  EXPECT_EQ(err.offset, text.find("[1,"));

  text = R"({"model": {"vocab": "a b c"}})";
  write("tokenizer.json", text);
  err = refused("tokenizer-vocab", path("tokenizer.json"));
  EXPECT_EQ(err.offset, text.find("\"a b c\""));

  write("tokenizer.json", "{\"model\": {\"vocab\": {\"\xff\": 0}}}");
  err = refused("json", path("tokenizer.json"));
  EXPECT_EQ(err.offset, 22u);
}

TEST_F(ModelDirTest, MalformedVocabJson) {
  write("model.safetensors", tiny_safetensors("w"));
  write("vocab.json", R"({"a": 0.5})");
  const FormatError err = refused("tokenizer-id", path("vocab.json"));
  EXPECT_EQ(err.offset, 6u);
  write("vocab.json", R"({"a": 0)");
  EXPECT_EQ(refused("json", path("vocab.json")).offset, 7u);
}

// A FIFO planted beside the weights must be refused, not waited on for a writer that never comes.
TEST_F(ModelDirTest, FifoInsteadOfAFileIsRefusedWithoutBlocking) {
  write("model.safetensors", tiny_safetensors("w"));
  const std::string config = path("config.json");
  ASSERT_EQ(::mkfifo(config.c_str(), 0600), 0);
  auto result = std::async(std::launch::async, [&] {
    Model m;
    FormatError err;
    const bool ok = open_model(dir_.string(), &m, &err);
    return std::pair(ok, err);
  });
  const bool returned = result.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  EXPECT_TRUE(returned) << "open_model blocked opening a FIFO";
  if (!returned) {
    // Open the other end so that the blocked open() returns and the test can finish.
    const int fd = ::open(config.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) ::close(fd);
  }
  const auto [ok, err] = result.get();
  EXPECT_FALSE(ok);
  EXPECT_EQ(err.file, config);
  EXPECT_EQ(err.rule, "open");
}

TEST_F(ModelDirTest, MalformedFrontMatter) {
  write("model.safetensors", tiny_safetensors("w"));
  const std::string card = "---\nlicense: mit\nbase_model: [org/one, org/two\n---\n# Card\n";
  write("README.md", card);
  const FormatError err = refused("model-card-yaml", path("README.md"));
  // Somewhere in the front matter, after its opening "---".
  EXPECT_GE(err.offset, 3u);
  EXPECT_LE(err.offset, card.find("\n---", 3));
  EXPECT_NE(err.message.find("YAML"), std::string::npos) << err.message;

  write("README.md", "---\nbase_model: \"unterminated\n---\n");
  refused("model-card-yaml", path("README.md"));
}

}  // namespace
}  // namespace evald::prov
