// fuzz_message: msgpack-decodes the input, then feeds the value to Job::from_value,
// Message::from_value, ConfigSchema::from_value and ConfigSchema::validate. Properties:
//   * a Job or Message that parses survives to_value -> from_value -> to_value unchanged;
//   * a schema that parses survives to_value -> from_value, and help() works;
//   * validate against a fixed schema is idempotent: what it returns validates again to
//     the same value (defaults filled, numbers widened once);
//   * the input as {schema: [...], config: ...} validates config against that schema.
#include "fuzz_common.hpp"

#include <evald/message.hpp>
#include <evald/schema.hpp>
#include <evald/value.hpp>

using evald::ConfigSchema;
using evald::Value;
namespace mp = evald::msgpack;
using evald::fuzz::same_value;

namespace {

const ConfigSchema& fixed_schema() {
  static const ConfigSchema s = [] {
    ConfigSchema c;
    c.number("scale", "multiplier").def(1.0).min(0).max(1e6)
        .integer("count", "how many").def(3).min(1).max(100)
        .string("mode", "how to read").choices({"fast", "exact"}).def("fast")
        .string("name", "a name").min(1).max(16)
        .boolean("verbose", "talk more").def(false)
        .list("files", "inputs").max(8)
        .map("extra", "anything")
        .string("must", "required one").required();
    return c;
  }();
  return s;
}

void check_validate(const ConfigSchema& schema, const Value& config, bool idempotent) {
  auto out = schema.validate(config);
  if (!out) {
    FUZZ_CHECK(!out.error().empty(), "validate failed without a message");
    return;
  }
  FUZZ_CHECK(out->is_map(), "validate returned a %s", evald::type_name(out->type()));
  if (!idempotent) return;
  auto again = schema.validate(*out);
  FUZZ_CHECK(again.ok(), "validated config fails validation again: %s", again.error().c_str());
  FUZZ_CHECK(same_value(*out, *again), "validate is not idempotent");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto v = mp::decode(data, size, mp::Limits{1u << 20, 32, 1u << 16, 1u << 12});
  if (!v) return 0;

  if (auto job = evald::Job::from_value(*v)) {
    Value a = job->to_value();
    auto job2 = evald::Job::from_value(a);
    FUZZ_CHECK(job2.ok(), "Job::to_value does not parse back: %s", job2.error().c_str());
    FUZZ_CHECK(same_value(a, job2->to_value()), "Job round trip changed the job");
    for (auto& m : job->inputs) (void)job->inputs_of(m.kind, m.envelope.stage);
  }
  if (auto msg = evald::Message::from_value(*v)) {
    Value a = msg->to_value();
    auto msg2 = evald::Message::from_value(a);
    FUZZ_CHECK(msg2.ok(), "Message::to_value does not parse back: %s", msg2.error().c_str());
    FUZZ_CHECK(same_value(a, msg2->to_value()), "Message round trip changed the message");
    evald::Bytes b = mp::encode(a);
    FUZZ_CHECK(mp::decode(b).ok(), "encoded message does not decode");
  }
  if (auto schema = ConfigSchema::from_value(*v)) {
    (void)schema->help();
    Value a = schema->to_value();
    auto schema2 = ConfigSchema::from_value(a);
    FUZZ_CHECK(schema2.ok(), "ConfigSchema::to_value does not parse back: %s", schema2.error().c_str());
    FUZZ_CHECK(same_value(a, schema2->to_value()), "ConfigSchema round trip changed the schema");
    // Defaults are not checked against their key's type, so no idempotence here.
    check_validate(*schema, Value(), false);
    check_validate(*schema, Value(evald::Map{}), false);
  }
  check_validate(fixed_schema(), *v, true);
  if (auto* s = v->find("schema")) {
    if (auto schema = ConfigSchema::from_value(*s)) {
      const Value* c = v->find("config");
      check_validate(*schema, c ? *c : Value(), false);
    }
  }
  return 0;
}
