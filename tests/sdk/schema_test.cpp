#include <evald/schema.hpp>

#include <gtest/gtest.h>

using namespace evald;

namespace {
ConfigSchema schema() {
  return ConfigSchema()
      .string("mode", "how").def("fast").choices({"fast", "exact"})
      .number("scale", "multiplier").def(1.0).min(0).max(10)
      .integer("n", "count").required().min(1)
      .list("tags", "labels").def(Array{}).max(3)
      .boolean("verbose", "talk more").def(false);
}
Value cfg(std::initializer_list<std::pair<const char*, Value>> kv) {
  Value v = Map{};
  for (auto& [k, x] : kv) v.set(k, x);
  return v;
}
}  // namespace

TEST(ConfigSchema, FillsDefaults) {
  auto r = schema().validate(cfg({{"n", 3}}));
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->get_string("mode"), "fast");
  EXPECT_DOUBLE_EQ(r->get_double("scale"), 1.0);
  EXPECT_EQ(r->get_int("n"), 3);
  EXPECT_FALSE(r->get_bool("verbose", true));
}

TEST(ConfigSchema, IntegerAcceptedAsNumber) {
  auto r = schema().validate(cfg({{"n", 1}, {"scale", 2}}));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->find("scale")->is_double());
}

TEST(ConfigSchema, RejectsEveryProblemNamingTheKey) {
  auto r = schema().validate(cfg({{"scale", 11.0}, {"mode", "slow"}, {"bogus", 1}, {"tags", Array{1, 2, 3, 4}}, {"verbose", "yes"}}));
  ASSERT_FALSE(r.ok());
  const std::string& e = r.error();
  EXPECT_NE(e.find("config.scale: value 11 is above the maximum 10"), std::string::npos) << e;
  EXPECT_NE(e.find("config.mode: \"slow\" is not one of: fast, exact"), std::string::npos) << e;
  EXPECT_NE(e.find("config.bogus: unknown key"), std::string::npos) << e;
  EXPECT_NE(e.find("config.tags: length 4 is above the maximum 3"), std::string::npos) << e;
  EXPECT_NE(e.find("config.verbose: expected bool, got string"), std::string::npos) << e;
  EXPECT_NE(e.find("config.n: required key missing"), std::string::npos) << e;
}

TEST(ConfigSchema, NonMapConfigIsRejected) {
  EXPECT_FALSE(schema().validate(Value(3)).ok());
  EXPECT_TRUE(ConfigSchema().validate(Value()).ok()) << "null means no config";
}

TEST(ConfigSchema, SurvivesTheAbiAsValue) {
  auto back = ConfigSchema::from_value(*msgpack::decode(msgpack::encode(schema().to_value())));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->help(), schema().help());
  EXPECT_FALSE(back->validate(cfg({{"n", 0}})).ok());
}

TEST(ConfigSchema, HelpListsEveryKey) {
  std::string h = schema().help();
  for (auto* k : {"mode (string, default \"fast\", one of fast exact)", "scale (number, default 1, min 0, max 10)", "n (int, required, min 1)"})
    EXPECT_NE(h.find(k), std::string::npos) << h;
}
