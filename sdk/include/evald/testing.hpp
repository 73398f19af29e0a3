// PluginHarness: runs one plugin on given jobs without a daemon, for plugin authors' tests.
// It loads the plugin's shared library (or takes an entry point), checks the config against
// the plugin's schema exactly as the daemon does, and captures emitted messages, logs and
// key-value state in memory. Header-only. Not thread-safe.
#pragma once

#include <evald/abi.h>
#include <evald/message.hpp>
#include <evald/schema.hpp>

#include <boost/dll/shared_library.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace evald::testing {

class PluginHarness {
 public:
  // Loads the library at path and looks up its EVALD_PLUGIN entry point. Throws
  // std::runtime_error naming the path when it cannot.
  explicit PluginHarness(const std::filesystem::path& library)
      : lib_(std::make_shared<boost::dll::shared_library>(library.string())) {
    if (!lib_->has(EVALD_PLUGIN_ENTRY))
      throw std::runtime_error(library.string() + ": no " EVALD_PLUGIN_ENTRY " symbol (not an evald plugin)");
    auto entry = *lib_->get<evald_plugin_entry_fn>(EVALD_PLUGIN_ENTRY);
    init(entry());
  }
  // Uses an entry point already linked into the test.
  explicit PluginHarness(const evald_plugin_api* api) { init(api); }

  ~PluginHarness() {
    if (instance_) {
      api_->stop(instance_);
      api_->destroy(instance_);
    }
    std::error_code ec;
    if (!scratch_.empty()) std::filesystem::remove_all(scratch_, ec);
  }
  PluginHarness(const PluginHarness&) = delete;
  PluginHarness& operator=(const PluginHarness&) = delete;

  const evald_plugin_api& api() const { return *api_; }

  // Schema check (unknown keys, types, ranges, defaults), the plugin's own validation,
  // then create and start: the daemon's order.
  Status configure(const Value& config) {
    auto schema = ConfigSchema::from_value(*msgpack::decode(api_->config_schema.data, api_->config_schema.size));
    if (!schema) return schema.status();
    auto checked = schema->validate(config);
    if (!checked) return checked.status();
    Bytes cfg = msgpack::encode(*checked);
    evald_error err{};
    if (api_->validate_config({cfg.data(), cfg.size()}, &err) != EVALD_OK) return Status::error(err.message);
    instance_ = api_->create(&host_, as_ctx(&plugin_ctx_), {cfg.data(), cfg.size()}, &err);
    if (!instance_) return Status::error(err.message);
    if (api_->start(instance_, &err) != EVALD_OK) return Status::error(err.message);
    return {};
  }

  // Runs a per-entrant job (process) or a barrier job (finish); returns what it emitted.
  Result<std::vector<Message>> process(const Job& job) { return run(job, false); }
  Result<std::vector<Message>> finish(const Job& job) { return run(job, true); }

  // Sets the cancellation flag the plugin sees through Context::cancelled().
  void cancel() { cancelled_ = true; }

  const std::vector<std::string>& logs() const { return logs_; }
  std::map<std::string, Bytes>& kv() { return kv_; }
  const std::vector<std::pair<double, double>>& progress() const { return progress_; }
  const std::filesystem::path& artifact_dir() const { return scratch_; }
  // Records the daemon would hold for the round's intake channel (evalctl intake submit);
  // the plugin reads them in id order through Context::intake. record needs a string "id".
  void add_intake(const std::string& channel, Value record) {
    std::string id = record.get_string("id");
    intake_[channel][id] = msgpack::encode(record);
  }

  // A per-entrant job for entrant id with the given submission fields.
  static Job entrant_job(const std::string& entrant, Value submission = Map{}, std::vector<Message> inputs = {}) {
    Job j;
    j.envelope = {"test-run", "test-round", entrant, "test-stage", "test-stage/" + entrant, 1};
    j.entrant.set("id", entrant);
    j.entrant.set("name", entrant);
    j.entrant.set("submission", std::move(submission));
    j.inputs = std::move(inputs);
    return j;
  }
  // A barrier job over the given upstream messages.
  static Job round_job(std::vector<Message> inputs) {
    Job j;
    j.envelope = {"test-run", "test-round", "", "test-stage", "test-stage/_round", 1};
    j.inputs = std::move(inputs);
    return j;
  }
  // An upstream message as a previous stage would have emitted it.
  static Message message(const std::string& stage, const std::string& entrant, const std::string& kind, Value payload) {
    Message m;
    m.envelope = {"test-run", "test-round", entrant, stage, stage + "/" + entrant, 1};
    m.kind = kind;
    m.payload = std::move(payload);
    return m;
  }

 private:
  struct Ctx {
    PluginHarness* h;
    bool in_job;
    Envelope env;
    std::vector<Message>* out;
  };
  static evald_ctx* as_ctx(Ctx* c) { return reinterpret_cast<evald_ctx*>(c); }
  static Ctx& of(evald_ctx* c) { return *reinterpret_cast<Ctx*>(c); }
  static std::string str(evald_bytes b) { return {reinterpret_cast<const char*>(b.data), b.size}; }

  void init(const evald_plugin_api* api) {
    if (!api) throw std::runtime_error("plugin entry point returned null");
    if (api->abi_major != EVALD_ABI_MAJOR || api->abi_minor > EVALD_ABI_MINOR)
      throw std::runtime_error("plugin built for evald ABI " + std::to_string(api->abi_major) + "." +
                               std::to_string(api->abi_minor) + ", harness supports " +
                               std::to_string(EVALD_ABI_MAJOR) + "." + std::to_string(EVALD_ABI_MINOR));
    api_ = api;
    plugin_ctx_ = {this, false, {}, nullptr};
    auto base = std::filesystem::temp_directory_path() / "evald-harness";
    std::filesystem::create_directories(base);
    std::string tmpl = (base / "XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed under " + base.string());
    scratch_ = tmpl;
    scratch_str_ = scratch_.string();
    host_ = {EVALD_ABI_MAJOR, EVALD_ABI_MINOR, sizeof(evald_host_api), &h_log, &h_emit, &h_kv_get,
             &h_kv_put, &h_kv_delete, &h_cancelled, &h_progress, &h_dir, &h_dir, &h_intake_scan};
  }

  Result<std::vector<Message>> run(const Job& job, bool barrier) {
    if (!instance_) return Status::error("configure() the plugin first");
    std::vector<Message> out;
    Ctx ctx{this, true, job.envelope, &out};
    Bytes b = msgpack::encode(job.to_value());
    evald_error err{};
    auto fn = barrier ? api_->finish : api_->process;
    if (fn(instance_, as_ctx(&ctx), {b.data(), b.size()}, &err) != EVALD_OK) return Status::error(err.message);
    return out;
  }

  static void h_log(evald_ctx* c, int level, const char* msg, size_t len) {
    of(c).h->logs_.push_back(std::to_string(level) + " " + std::string(msg, len));
  }
  static int h_emit(evald_ctx* c, const char* kind, size_t kind_len, uint32_t ver, evald_bytes payload) {
    auto& ctx = of(c);
    if (!ctx.in_job) return EVALD_ERR_INVALID;
    auto v = msgpack::decode(payload.data, payload.size);
    if (!v) return EVALD_ERR;
    Message m;
    m.envelope = ctx.env;
    m.kind.assign(kind, kind_len);
    m.schema_version = ver;
    m.seq = int64_t(ctx.out->size());
    m.payload = std::move(*v);
    ctx.out->push_back(std::move(m));
    return EVALD_OK;
  }
  static int h_kv_get(evald_ctx* c, evald_bytes key, evald_sink_fn sink, void* sink_ctx) {
    auto& kv = of(c).h->kv_;
    auto it = kv.find(str(key));
    if (it == kv.end()) return EVALD_NOT_FOUND;
    sink(sink_ctx, {it->second.data(), it->second.size()});
    return EVALD_OK;
  }
  static int h_kv_put(evald_ctx* c, evald_bytes key, evald_bytes value) {
    of(c).h->kv_[str(key)] = Bytes(value.data, value.data + value.size);
    return EVALD_OK;
  }
  static int h_kv_delete(evald_ctx* c, evald_bytes key) {
    of(c).h->kv_.erase(str(key));
    return EVALD_OK;
  }
  static int h_cancelled(evald_ctx* c) { return of(c).h->cancelled_ ? 1 : 0; }
  static void h_progress(evald_ctx* c, double done, double total) { of(c).h->progress_.emplace_back(done, total); }
  static const char* h_dir(evald_ctx* c) { return of(c).h->scratch_str_.c_str(); }
  static int h_intake_scan(evald_ctx* c, const char* channel, size_t len, evald_sink_fn sink, void* sink_ctx) {
    auto& ctx = of(c);
    if (!ctx.in_job) return EVALD_ERR_INVALID;
    auto it = ctx.h->intake_.find(std::string(channel, len));
    if (it == ctx.h->intake_.end()) return EVALD_OK;
    for (auto& [_, rec] : it->second) sink(sink_ctx, {rec.data(), rec.size()});
    return EVALD_OK;
  }

  std::shared_ptr<boost::dll::shared_library> lib_;
  const evald_plugin_api* api_ = nullptr;
  void* instance_ = nullptr;
  evald_host_api host_{};
  Ctx plugin_ctx_{};
  std::vector<std::string> logs_;
  std::map<std::string, Bytes> kv_;
  std::map<std::string, std::map<std::string, Bytes>> intake_;
  std::vector<std::pair<double, double>> progress_;
  std::filesystem::path scratch_;
  std::string scratch_str_;
  bool cancelled_ = false;
};

}  // namespace evald::testing
