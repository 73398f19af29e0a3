// The C++ API for plugin authors: derive from evald::Plugin, declare a config schema, and
// export the class with EVALD_PLUGIN. Header-only on top of the C ABI in <evald/abi.h>:
// nothing C++ crosses into the daemon, so the plugin may use another compiler version.
//
//   class Doubler : public evald::Plugin {
//    public:
//     static evald::ConfigSchema config_schema() {
//       return evald::ConfigSchema().number("factor", "multiplier").def(2.0).min(0);
//     }
//     Doubler(const evald::Value& config, evald::Context&) : f_(config.get_double("factor")) {}
//     evald::Status process(const evald::Job& job, evald::Context& ctx) override { ... }
//    private:
//     double f_;
//   };
//   EVALD_PLUGIN(Doubler, "doubler", "1.0.0", "Doubles every value")
//
// Optionally a static `evald::Status validate(const evald::Value& config)` adds checks the
// schema cannot express; it runs on `evald --validate` and before every start.
#pragma once

#include <evald/abi.h>
#include <evald/message.hpp>
#include <evald/schema.hpp>
#include <evald/value.hpp>

#include <boost/dll/alias.hpp>

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <string>

namespace evald {

enum class LogLevel { Trace = EVALD_LOG_TRACE, Debug = EVALD_LOG_DEBUG, Info = EVALD_LOG_INFO, Warn = EVALD_LOG_WARN, Error = EVALD_LOG_ERROR };

// The daemon as a plugin sees it, for one instance (outside jobs) or one job.
// Not thread-safe: use a Context from the thread that received it.
class Context {
 public:
  Context(const evald_host_api* host, evald_ctx* ctx) : host_(host), ctx_(ctx) {}

  void log(LogLevel level, std::string_view msg) { host_->log(ctx_, int(level), msg.data(), msg.size()); }
  void info(std::string_view msg) { log(LogLevel::Info, msg); }
  void warn(std::string_view msg) { log(LogLevel::Warn, msg); }
  void error(std::string_view msg) { log(LogLevel::Error, msg); }

  // Emits an output message of the current job. Fails outside a job.
  Status emit(std::string_view kind, const Value& payload, uint32_t schema_version = 1) {
    Bytes b = msgpack::encode(payload);
    int rc = host_->emit(ctx_, kind.data(), kind.size(), schema_version, {b.data(), b.size()});
    return rc == EVALD_OK ? Status() : Status::error("emit of \"" + std::string(kind) + "\" refused by host (rc " + std::to_string(rc) + ")");
  }

  // Plugin-scoped durable state. get returns nullopt when the key is absent.
  std::optional<Bytes> kv_get(std::string_view key) {
    std::optional<Bytes> out;
    auto sink = [](void* p, evald_bytes v) { *static_cast<std::optional<Bytes>*>(p) = Bytes(v.data, v.data + v.size); };
    host_->kv_get(ctx_, span(key), sink, &out);
    return out;
  }
  Status kv_put(std::string_view key, const Bytes& value) {
    return host_->kv_put(ctx_, span(key), {value.data(), value.size()}) == EVALD_OK ? Status() : Status::error("kv_put failed");
  }
  Status kv_put(std::string_view key, std::string_view value) {
    return host_->kv_put(ctx_, span(key), span(value)) == EVALD_OK ? Status() : Status::error("kv_put failed");
  }
  Status kv_delete(std::string_view key) {
    return host_->kv_delete(ctx_, span(key)) == EVALD_OK ? Status() : Status::error("kv_delete failed");
  }

  // Calls fn with each record streamed in for this job's round on channel (see
  // evald_host_api::intake_scan), in id order, until fn fails. An error when the daemon
  // predates intake (ABI 1.0), outside a job, or when a record does not decode.
  template <class F>
  Status intake(std::string_view channel, F&& fn) {
    if (host_->struct_size < offsetof(evald_host_api, intake_scan) + sizeof(host_->intake_scan) || !host_->intake_scan)
      return Status::error("the daemon does not offer intake (ABI " + std::to_string(host_->abi_major) + "." +
                           std::to_string(host_->abi_minor) + "; 1.1 needed)");
    struct Sink {
      F* fn;
      Status st;
    } s{&fn, {}};
    auto sink = [](void* p, evald_bytes v) {
      auto& sk = *static_cast<Sink*>(p);
      if (!sk.st) return;
      auto rec = msgpack::decode(v.data, v.size);
      sk.st = rec ? (*sk.fn)(*rec) : Status::error("intake record does not decode: " + rec.error());
    };
    int rc = host_->intake_scan(ctx_, channel.data(), channel.size(), sink, &s);
    if (!s.st) return s.st;
    if (rc != EVALD_OK) return Status::error("intake of channel \"" + std::string(channel) + "\" unavailable (rc " + std::to_string(rc) + ")");
    return {};
  }

  bool cancelled() const { return host_->cancelled(ctx_) != 0; }
  void progress(double done, double total) { host_->progress(ctx_, done, total); }
  std::string scratch_dir() const { return host_->scratch_dir(ctx_); }
  std::string artifact_dir() const { return host_->artifact_dir(ctx_); }
  const evald_host_api* host() const { return host_; }

 private:
  static evald_bytes span(std::string_view s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }
  const evald_host_api* host_;
  evald_ctx* ctx_;
};

class Plugin {
 public:
  virtual ~Plugin() = default;
  // Called once before any job; acquire resources here rather than in the constructor.
  virtual Status start() { return {}; }
  // A per-entrant job. Emit outputs through ctx.
  virtual Status process(const Job&, Context&) { return Status::error("this plugin does not take per-entrant jobs"); }
  // A barrier (per-round) job: job.inputs holds every upstream result of the run.
  virtual Status finish(const Job&, Context&) { return Status::error("this plugin does not take per-round (barrier) jobs"); }
  // Safe without start and more than once.
  virtual void stop() {}
};

namespace detail {

inline void set_error(evald_error* err, std::string_view msg) {
  if (!err) return;
  size_t n = std::min(msg.size(), sizeof err->message - 1);
  std::memcpy(err->message, msg.data(), n);
  err->message[n] = '\0';
}

inline Result<Value> decode_span(evald_bytes b) { return msgpack::decode(b.data, b.size); }

template <class P>
concept HasValidate = requires(const Value& v) {
  { P::validate(v) } -> std::same_as<Status>;
};

// Turns C calls into calls on P, catching every exception at the boundary.
template <class P>
class Adapter {
 public:
  Adapter(const char* name, const char* version, const char* description)
      : schema_bytes_(msgpack::encode(P::config_schema().to_value())) {
    api_.abi_major = EVALD_ABI_MAJOR;
    api_.abi_minor = EVALD_ABI_MINOR;
    api_.struct_size = sizeof(evald_plugin_api);
    api_.name = name;
    api_.version = version;
    api_.description = description;
    api_.config_schema = {schema_bytes_.data(), schema_bytes_.size()};
    api_.validate_config = &validate_config;
    api_.create = &create;
    api_.start = &start;
    api_.process = &process;
    api_.finish = &finish;
    api_.stop = &stop;
    api_.destroy = &destroy;
  }
  const evald_plugin_api* api() const { return &api_; }

 private:
  struct Instance {
    Context ctx;
    std::unique_ptr<P> plugin;
  };

  template <class F>
  static int guard(evald_error* err, F&& f) {
    try {
      Status s = f();
      if (s.ok()) return EVALD_OK;
      set_error(err, s.message());
    } catch (const std::exception& e) {
      set_error(err, std::string("plugin threw: ") + e.what());
    } catch (...) {
      set_error(err, "plugin threw a non-standard exception");
    }
    return EVALD_ERR;
  }

  static int validate_config(evald_bytes config, evald_error* err) {
    return guard(err, [&]() -> Status {
      auto cfg = decode_span(config);
      if (!cfg) return cfg.status();
      if constexpr (HasValidate<P>) return P::validate(*cfg);
      return {};
    });
  }
  static void* create(const evald_host_api* host, evald_ctx* ctx, evald_bytes config, evald_error* err) {
    Instance* out = nullptr;
    guard(err, [&]() -> Status {
      auto cfg = decode_span(config);
      if (!cfg) return cfg.status();
      auto inst = std::make_unique<Instance>(Instance{Context(host, ctx), nullptr});
      inst->plugin = std::make_unique<P>(*cfg, inst->ctx);
      out = inst.release();
      return {};
    });
    return out;
  }
  static int start(void* inst, evald_error* err) {
    return guard(err, [&] { return static_cast<Instance*>(inst)->plugin->start(); });
  }
  template <bool Barrier>
  static int run_job(void* inst, evald_ctx* job_ctx, evald_bytes job, evald_error* err) {
    return guard(err, [&]() -> Status {
      auto v = decode_span(job);
      if (!v) return v.status();
      auto j = Job::from_value(*v);
      if (!j) return j.status();
      Context ctx(static_cast<Instance*>(inst)->ctx.host(), job_ctx);
      auto& p = *static_cast<Instance*>(inst)->plugin;
      return Barrier ? p.finish(*j, ctx) : p.process(*j, ctx);
    });
  }
  static int process(void* i, evald_ctx* c, evald_bytes j, evald_error* e) { return run_job<false>(i, c, j, e); }
  static int finish(void* i, evald_ctx* c, evald_bytes j, evald_error* e) { return run_job<true>(i, c, j, e); }
  static void stop(void* inst) {
    try {
      static_cast<Instance*>(inst)->plugin->stop();
    } catch (...) {
    }
  }
  static void destroy(void* inst) { delete static_cast<Instance*>(inst); }

  Bytes schema_bytes_;
  evald_plugin_api api_{};
};

}  // namespace detail
}  // namespace evald

// Exports plugin class Class under the given name, version and one-line description.
// Use once per shared library, at namespace scope.
#define EVALD_PLUGIN(Class, Name, Version, Description)                                  \
  namespace {                                                                            \
  const evald_plugin_api* evald_plugin_entry_impl() {                                    \
    static const ::evald::detail::Adapter<Class> adapter(Name, Version, Description);    \
    return adapter.api();                                                                \
  }                                                                                      \
  }                                                                                      \
  BOOST_DLL_ALIAS(evald_plugin_entry_impl, evald_plugin_entry)
