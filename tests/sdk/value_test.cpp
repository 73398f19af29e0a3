#include <evald/message.hpp>
#include <evald/value.hpp>

#include <gtest/gtest.h>
#include <msgpack.hpp>

#include <cmath>

using namespace evald;
namespace mp = evald::msgpack;

namespace {

Value sample() {
  Value v;
  v.set("name", "팀 알파");
  v.set("n", -123456789012LL);
  v.set("small", 5);
  v.set("neg", -3);
  v.set("pi", 3.25);
  v.set("yes", true);
  v.set("none", Value());
  v.set("bytes", Bytes{0, 1, 2, 255});
  Array a;
  for (int i = 0; i < 40; ++i) a.push_back(i * 1000);
  v.set("list", std::move(a));
  Value inner;
  inner.set("deep", std::string(300, 'x'));
  v.set("inner", inner);
  return v;
}

}  // namespace

TEST(Msgpack, RoundTripsEveryType) {
  Value v = sample();
  auto back = mp::decode(mp::encode(v));
  ASSERT_TRUE(back.ok()) << back.error();
  EXPECT_EQ(*back, v);
}

TEST(Msgpack, EncodingIsDeterministic) {
  Value a, b;
  a.set("z", 1);
  a.set("a", 2);
  b.set("a", 2);
  b.set("z", 1);
  EXPECT_EQ(mp::encode(a), mp::encode(b));
}

TEST(Msgpack, HugeDeclaredArrayIsRefusedWithoutAllocating) {
  // array32 claiming 4 billion elements in a 5-byte input.
  Bytes evil = {0xdd, 0xff, 0xff, 0xff, 0xff};
  auto r = mp::decode(evil);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("offset"), std::string::npos) << r.error();
  Bytes evil_map = {0xdf, 0x7f, 0xff, 0xff, 0xff};
  EXPECT_FALSE(mp::decode(evil_map).ok());
  Bytes evil_str = {0xdb, 0x7f, 0xff, 0xff, 0xff, 'a'};
  auto s = mp::decode(evil_str);
  ASSERT_FALSE(s.ok());
}

TEST(Msgpack, DepthLimit) {
  Bytes deep(100, 0x91);  // 100 nested one-element arrays
  deep.push_back(0x01);
  mp::Limits lim;
  lim.max_depth = 10;
  auto r = mp::decode(deep, lim);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("nesting"), std::string::npos);
  lim.max_depth = 200;
  EXPECT_TRUE(mp::decode(deep, lim).ok());
}

TEST(Msgpack, ElementAndInputLimits) {
  Array a(100, Value(1));
  Bytes b = mp::encode(Value(a));
  mp::Limits lim;
  lim.max_elements = 50;
  EXPECT_FALSE(mp::decode(b, lim).ok());
  lim = {};
  lim.max_input = 10;
  EXPECT_FALSE(mp::decode(b, lim).ok());
}

TEST(Msgpack, MalformedInputsNameTheOffset) {
  struct Case {
    Bytes in;
    const char* needle;
  } cases[] = {
      {{}, "truncated"},
      {{0x92, 0x01}, "past end of input"},
      {{0x92, 0x01, 0xa5}, "truncated"},
      {{0xc1}, "unsupported type byte 0xc1"},
      {{0x81, 0x01, 0x02}, "map key is not a string"},
      {{0x82, 0xa1, 'a', 0x01, 0xa1, 'a', 0x02}, "duplicate map key"},
      {{0x01, 0x02}, "trailing"},
      {{0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "int64"},
  };
  for (auto& c : cases) {
    auto r = mp::decode(c.in);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().find(c.needle), std::string::npos) << r.error();
    EXPECT_NE(r.error().find("offset"), std::string::npos) << r.error();
  }
}

// Our codec must speak the same wire format as the reference implementation.
TEST(Msgpack, InteroperatesWithMsgpackCxx) {
  ::msgpack::sbuffer buf;
  ::msgpack::packer<::msgpack::sbuffer> pk(&buf);
  pk.pack_map(5);
  pk.pack(std::string("i"));
  pk.pack(uint64_t(4000000000ULL));
  pk.pack(std::string("f"));
  pk.pack(float(1.5f));
  pk.pack(std::string("s"));
  pk.pack(std::string("한국어"));
  pk.pack(std::string("a"));
  pk.pack(std::vector<int>{-1, 200, -40000});
  pk.pack(std::string("n"));
  pk.pack_nil();
  auto v = mp::decode(reinterpret_cast<const uint8_t*>(buf.data()), buf.size());
  ASSERT_TRUE(v.ok()) << v.error();
  EXPECT_EQ(v->get_int("i"), 4000000000LL);
  EXPECT_DOUBLE_EQ(v->get_double("f"), 1.5);
  EXPECT_EQ(v->get_string("s"), "한국어");
  EXPECT_EQ(v->find("a")->as_array()[2].as_int(), -40000);
  EXPECT_TRUE(v->find("n")->is_null());

  Bytes ours = mp::encode(sample());
  auto oh = ::msgpack::unpack(reinterpret_cast<const char*>(ours.data()), ours.size());
  std::map<std::string, ::msgpack::object> m;
  oh.get().convert(m);
  EXPECT_EQ(m.at("name").as<std::string>(), "팀 알파");
  EXPECT_EQ(m.at("n").as<int64_t>(), -123456789012LL);
  EXPECT_DOUBLE_EQ(m.at("pi").as<double>(), 3.25);
  EXPECT_EQ(m.at("list").as<std::vector<int>>().at(39), 39000);
  EXPECT_EQ(m.at("bytes").type, ::msgpack::type::BIN);
}

TEST(Value, JsonRendering) {
  Value v;
  v.set("s", "a\"b\n");
  v.set("x", 1.5);
  v.set("nan", std::nan(""));
  v.set("b", Bytes{0xab});
  EXPECT_EQ(to_json(v), R"({"b":"ab","nan":null,"s":"a\"b\n","x":1.5})");
}

TEST(Job, RoundTripsThroughValue) {
  Job j;
  j.envelope = {"run-1", "r1", "team-a", "read", "run-1/read/team-a", 2};
  j.entrant.set("id", "team-a");
  Message m;
  m.envelope = j.envelope;
  m.kind = "value";
  m.payload.set("value", 1.0);
  j.inputs.push_back(m);
  j.failed_upstream.push_back({"read", "team-b", "boom"});
  auto back = Job::from_value(*mp::decode(mp::encode(j.to_value())));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->envelope.attempt, 2);
  EXPECT_EQ(back->inputs.size(), 1u);
  EXPECT_EQ(back->inputs_of("value").size(), 1u);
  EXPECT_EQ(back->failed_upstream[0].error, "boom");
  EXPECT_FALSE(Job::from_value(Value(1)).ok());
}

TEST(Msgpack, ValidateAppliesTheSameRulesWithoutBuilding) {
  Bytes good = mp::encode(sample());
  EXPECT_TRUE(mp::validate(good.data(), good.size()).ok());
  for (Bytes bad : {Bytes{0xdd, 0xff, 0xff, 0xff, 0xff}, Bytes{0x82, 0xa1, 'a', 0x01, 0xa1, 'a', 0x02}, Bytes{0x81, 0x01, 0x02},
                    Bytes{0xc1}, Bytes{0x01, 0x02}, Bytes{0x92, 0x01, 0xa5}}) {
    auto st = mp::validate(bad.data(), bad.size());
    auto dec = mp::decode(bad);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.message(), dec.error()) << "validate and decode report the same problem";
  }
  // A large map with a duplicate key deep inside is caught too.
  Bytes big = {0xde, 0x00, 0x40};
  for (int i = 0; i < 64; ++i) {
    std::string k = "k" + std::to_string(i == 63 ? 5 : i);
    mp::encode_to(Value(k), big);
    big.push_back(0x01);
  }
  EXPECT_NE(mp::validate(big.data(), big.size()).message().find("duplicate map key \"k5\""), std::string::npos);
}

TEST(Message, SplicedEncodingsEqualTheValueEncodings) {
  Message m;
  m.envelope = {"run-1", "r1", "team-a", "read", "run-1/read/team-a", 3};
  m.kind = "value";
  m.schema_version = 2;
  m.seq = 7;
  m.payload = sample();
  Bytes payload = mp::encode(m.payload);
  Bytes spliced = encode_message(m.envelope, m.kind, m.schema_version, m.seq, payload.data(), payload.size());
  EXPECT_EQ(spliced, mp::encode(m.to_value()));

  Job j;
  j.envelope = {"run-1", "r1", "team-a", "score", "run-1/score/team-a", 1};
  j.entrant.set("id", "team-a");
  j.round.set("id", "r1");
  j.inputs = {m, m};
  j.failed_upstream.push_back({"read", "team-b", "failed: x"});
  Bytes enc = mp::encode(m.to_value());
  Bytes job = encode_job(j.envelope, j.entrant, j.round, {&enc, &enc}, j.failed_upstream);
  EXPECT_EQ(job, mp::encode(j.to_value()));
  // With the daemon's GPU lease: the same bytes as the map, and back again.
  j.resources.set("gpus", Array{Value(2), Value(3)});
  Bytes leased = encode_job(j.envelope, j.entrant, j.round, {&enc, &enc}, j.failed_upstream, j.resources);
  EXPECT_EQ(leased, mp::encode(j.to_value()));
  auto back = Job::from_value(*mp::decode(leased));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->gpus(), (std::vector<int>{2, 3}));
}

// Found by fuzz_msgpack: validate took a container key for the previous string key.
TEST(Msgpack, ValidateRejectsNonStringKeysAfterAStringKey) {
  for (Bytes in : {Bytes{0x82, 0xa1, 'a', 0xa1, 'z', 0x91, 0x01, 0x02}, Bytes{0x82, 0xa1, 'a', 0xa3, 'z', 'z', 'z', 0xc4, 0x01, 'b', 0x01}}) {
    auto st = mp::validate(in.data(), in.size());
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.message().find("map key is not a string"), std::string::npos) << st.message();
    EXPECT_FALSE(mp::decode(in).ok());
  }
}

// Found by reading the decoder: nested arrays each claiming what the remaining input
// allows must not multiply into gigabytes of reservations.
TEST(Msgpack, NestedHugeArraysDoNotReserveGigabytes) {
  Bytes in;
  for (int i = 0; i < 64; ++i) in.insert(in.end(), {0xdd, 0x00, 0x10, 0x00, 0x00});
  in.resize(in.size() + (1u << 20), 0x00);
  auto r = mp::decode(in);  // would throw std::bad_alloc under a 2 GB address-space limit before
  EXPECT_FALSE(r.ok());
}
