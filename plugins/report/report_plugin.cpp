// report: the per-round barrier stage that turns a round's tally and every upstream result
// into the report an evaluation office publishes (HTML, Markdown, CSV, JSON), a manifest of
// everything the result depends on, and an ed25519 signature over both. The work is in
// src/report.hpp; this file only talks to the host.
//
//   - id: report
//     plugin: report
//     per: round
//     after: [tally, provenance, experts, users, bench]
//     config: {signing_key: /srv/evald/keys/report.key, lang: ko, notice: "SAMPLE DATA"}
#include <evald/plugin.hpp>

#include "report.hpp"

using evald::Status;
using evald::Value;
namespace rpt = evald::report;

class Report : public evald::Plugin {
 public:
  static evald::ConfigSchema config_schema() {
    return evald::ConfigSchema()
        .string("signing_key", "file holding the ed25519 secret seed as 64 hex characters; created (0600, parent directories 0700) when absent").required()
        .string("lang", "language of the report's wording: en or ko").def("en").choices({"en", "ko"})
        .string("title", "title of the report (empty: competition and round)").def("")
        .string("notice", "shown prominently at the top of every format, e.g. \"SAMPLE DATA — not the programme's real scores\"").def("")
        .string("kind", "kind of the emitted message").def("report").min(1);
  }

  static Status validate(const Value& config) {
    if (config.get_string("signing_key").empty()) return Status::error("signing_key: the path of the signing key file must not be empty");
    return {};
  }

  Report(const Value& config, evald::Context& ctx) : config_(config), ctx_(ctx) {
    opt_.lang = config.get_string("lang") == "ko" ? rpt::Lang::Ko : rpt::Lang::En;
    opt_.title = config.get_string("title");
    opt_.notice = config.get_string("notice");
  }

  // The key is read (or made) once, before any job, so a bad key file fails the start.
  Status start() override {
    auto key = rpt::load_or_create_key(config_.get_string("signing_key"));
    if (!key) return key.status();
    key_ = std::move(*key);
    if (!key_.warning.empty()) ctx_.warn(key_.warning);
    ctx_.info(std::string(key_.created ? "created signing key " : "signing with key ") + key_.path + "; public key " + key_.public_hex() +
              (key_.created ? " (publish it so readers can verify reports)" : ""));
    return {};
  }

  Status finish(const evald::Job& job, evald::Context& ctx) override {
    auto payload = rpt::write_report(job, opt_, key_, ctx.artifact_dir(), [&ctx](double d, double t) { ctx.progress(d, t); });
    if (!payload) return payload.status();
    if (const Value* notes = payload->find("notes"); notes && notes->is_array())
      for (auto& n : notes->as_array())
        if (n.is_string()) ctx.warn(n.as_string());
    ctx.info("report of round " + payload->get_string("round") + (payload->get_bool("decided") ? " (decided)" : " (not decided)") + " in " +
             payload->get_string("dir") + ", signed with " + payload->get_string("public_key"));
    return ctx.emit(config_.get_string("kind"), *payload);
  }

 private:
  Value config_;
  evald::Context& ctx_;
  rpt::Options opt_;
  rpt::SigningKey key_;
};

EVALD_PLUGIN(Report, "report", "1.0.0", "Per round: the signed round report (HTML, Markdown, CSV, JSON) with a manifest of every input")
