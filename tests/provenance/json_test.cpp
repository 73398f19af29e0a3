// The strict JSON reader: valid documents (nesting, escapes, surrogate pairs, exact integers up to
// 2^64 - 1) and malformed ones, each refused at the byte offset of its first bad byte.
#include "json.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

namespace evald::text {
namespace {

Json parsed(std::string_view text, int max_depth = 64) {
  Json j;
  JsonError err;
  EXPECT_TRUE(parse_json(text, &j, &err, max_depth)) << "at " << err.offset << ": " << err.message << " in: " << text;
  return j;
}

// Parses text that must be refused at `offset`, with a message containing `says`.
void refused(std::string_view text, uint64_t offset, std::string_view says = "", int max_depth = 64) {
  Json j;
  JsonError err;
  EXPECT_FALSE(parse_json(text, &j, &err, max_depth)) << text;
  EXPECT_EQ(err.offset, offset) << err.message << " in: " << text;
  EXPECT_FALSE(err.message.empty());
  EXPECT_NE(err.message.find(says), std::string::npos) << err.message << " in: " << text;
}

// --- valid documents ---

TEST(JsonTest, NestedDocumentKeepsOrderTypesAndOffsets) {
  const std::string text = R"( {"b": [1, {"x": null}, "s"], "a": true, "c": false, "d": {}, "e": []} )";
  Json j = parsed(text);
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j.offset(), 1u);
  ASSERT_EQ(j.members().size(), 5u);
  EXPECT_EQ(j.members()[0].first, "b");  // document order, not sorted
  EXPECT_EQ(j.members()[1].first, "a");
  const Json* b = j.find("b");
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(b->is_array());
  EXPECT_EQ(b->offset(), text.find('['));
  ASSERT_EQ(b->items().size(), 3u);
  EXPECT_TRUE(b->items()[0].is_uint());
  EXPECT_EQ(b->items()[0].offset(), text.find('1'));
  const Json& inner = b->items()[1];
  ASSERT_TRUE(inner.is_object());
  ASSERT_NE(inner.find("x"), nullptr);
  EXPECT_EQ(inner.find("x")->type(), Json::Type::Null);
  EXPECT_EQ(inner.find("x")->offset(), text.find("null"));
  EXPECT_EQ(b->items()[2].str(), "s");
  EXPECT_EQ(b->items()[2].offset(), text.find("\"s\""));
  EXPECT_EQ(j.find("a")->type(), Json::Type::Bool);
  EXPECT_TRUE(j.find("a")->as_bool());
  EXPECT_FALSE(j.find("c")->as_bool());
  EXPECT_TRUE(j.find("d")->is_object());
  EXPECT_TRUE(j.find("d")->members().empty());
  EXPECT_TRUE(j.find("e")->items().empty());
  EXPECT_EQ(j.find("missing"), nullptr);
  EXPECT_EQ(b->find("b"), nullptr);  // find on a non-object
  EXPECT_STREQ(j.type_name(), "object");
  EXPECT_STREQ(b->type_name(), "array");
  EXPECT_STREQ(inner.find("x")->type_name(), "null");
}

TEST(JsonTest, AnyValueMayBeTheDocument) {
  EXPECT_EQ(parsed("\"x\"").str(), "x");
  EXPECT_EQ(parsed(" 42 ").as_uint(), 42u);
  EXPECT_EQ(parsed("null").type(), Json::Type::Null);
  EXPECT_TRUE(parsed("\t\r\ntrue\n").as_bool());
}

TEST(JsonTest, SimpleEscapes) {
  EXPECT_EQ(parsed(R"("\"\\\/\b\f\n\r\t")").str(), "\"\\/\b\f\n\r\t");
  EXPECT_EQ(parsed(R"("")").str(), "");
}

TEST(JsonTest, UnicodeEscapesBecomeUtf8) {
  EXPECT_EQ(parsed(R"("\u0041")").str(), "A");
  EXPECT_EQ(parsed(R"("\u00e9\u00E9")").str(), "\xc3\xa9\xc3\xa9");
  EXPECT_EQ(parsed(R"("\u20ac")").str(), "\xe2\x82\xac");
  EXPECT_EQ(parsed(R"("\uffff")").str(), "\xef\xbf\xbf");
  EXPECT_EQ(parsed(R"("\u0000")").str(), std::string(1, '\0'));
  EXPECT_EQ(parsed(R"("\u007f\u0080\u07ff\u0800")").str(), "\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80");
  // Surrogate pairs.
  EXPECT_EQ(parsed(R"("\ud83d\ude00")").str(), "\xf0\x9f\x98\x80");
  EXPECT_EQ(parsed(R"("\uD800\uDC00")").str(), "\xf0\x90\x80\x80");
  EXPECT_EQ(parsed(R"("\udbff\udfff")").str(), "\xf4\x8f\xbf\xbf");
  EXPECT_EQ(parsed(R"({"\u0061b": 1})").members()[0].first, "ab");
}

TEST(JsonTest, RawUtf8PassesThrough) {
  const std::string s = "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\x7f\"";
  EXPECT_EQ(parsed(s).str(), s.substr(1, s.size() - 2));
}

TEST(JsonTest, IntegersAreExactUpTo2To64Minus1) {
  Json j = parsed("18446744073709551615");
  EXPECT_TRUE(j.is_uint());
  EXPECT_EQ(j.as_uint(), UINT64_MAX);
  EXPECT_DOUBLE_EQ(j.as_double(), 18446744073709551615.0);
  // Past double precision, still exact.
  j = parsed("9007199254740993");
  EXPECT_TRUE(j.is_uint());
  EXPECT_EQ(j.as_uint(), 9007199254740993u);
  j = parsed("0");
  EXPECT_TRUE(j.is_uint());
  EXPECT_EQ(j.as_uint(), 0u);
}

TEST(JsonTest, TwoTo64IsANumberButNotAUint) {
  Json j = parsed("18446744073709551616");
  EXPECT_TRUE(j.is_number());
  EXPECT_FALSE(j.is_uint());
  EXPECT_DOUBLE_EQ(j.as_double(), 18446744073709551616.0);
  j = parsed("123456789012345678901234567890");
  EXPECT_FALSE(j.is_uint());
  EXPECT_DOUBLE_EQ(j.as_double(), 1.2345678901234568e29);
}

TEST(JsonTest, NegativeFractionsAndExponentsAreNotUints) {
  Json j = parsed("-1");
  EXPECT_TRUE(j.is_number());
  EXPECT_FALSE(j.is_uint());
  EXPECT_EQ(j.as_double(), -1.0);
  j = parsed("-0");
  EXPECT_FALSE(j.is_uint());
  EXPECT_TRUE(std::signbit(j.as_double()));
  EXPECT_FALSE(parsed("1.0").is_uint());
  EXPECT_FALSE(parsed("1e3").is_uint());
  EXPECT_EQ(parsed("1e3").as_double(), 1000.0);
  EXPECT_EQ(parsed("1E+2").as_double(), 100.0);
  EXPECT_EQ(parsed("-2.5e-3").as_double(), -0.0025);
  EXPECT_EQ(parsed("0.5").as_double(), 0.5);
  EXPECT_EQ(parsed("-9223372036854775809").as_double(), -9223372036854775809.0);
}

TEST(JsonTest, HugeNumbersBecomeInfinities) {
  EXPECT_EQ(parsed("1e400").as_double(), HUGE_VAL);
  EXPECT_EQ(parsed("-1e400").as_double(), -HUGE_VAL);
  EXPECT_EQ(parsed("1" + std::string(400, '0')).as_double(), HUGE_VAL);
  EXPECT_EQ(parsed("1" + std::string(400, '0') + "e-10").as_double(), HUGE_VAL);
}

// Underflow is not overflow: std::from_chars reports both as result_out_of_range.
TEST(JsonTest, TinyNumbersBecomeZeros) {
  Json j = parsed("1e-400");
  EXPECT_EQ(j.as_double(), 0.0);
  EXPECT_FALSE(std::signbit(j.as_double()));
  j = parsed("-1e-400");
  EXPECT_EQ(j.as_double(), 0.0);
  EXPECT_TRUE(std::signbit(j.as_double()));
  EXPECT_EQ(parsed("0." + std::string(400, '0') + "1e10").as_double(), 0.0);
  EXPECT_EQ(parsed("4.9e-324").as_double(), 4.9406564584124654e-324);  // the smallest subnormal is in range
}

TEST(JsonTest, DepthLimit) {
  const std::string deep64 = std::string(64, '[') + std::string(64, ']');
  EXPECT_TRUE(parsed(deep64).is_array());
  const std::string deep65 = std::string(65, '[') + std::string(65, ']');
  refused(deep65, 64, "nesting deeper than 64");
  EXPECT_TRUE(parsed("[[1]]", 2).is_array());
  refused("[[[1]]]", 2, "nesting deeper than 2", 2);
  refused(R"({"a":{"b":{}}})", 10, "nesting", 2);
  refused(R"([{"a":[]}])", 6, "nesting", 2);
  // Deep input fails at the limit, long before the stack would.
  refused(std::string(100000, '['), 64, "nesting");
}

// --- malformed documents ---

TEST(JsonTest, DuplicateKeys) {
  refused(R"({"a":1,"b":2,"a":3})", 13, "duplicate key \"a\"");
  refused(R"({"a":1,"\u0061":2})", 7, "duplicate key \"a\"");  // equal once unescaped
  refused(R"({"o":{"k":1,"k":{}}})", 12, "\"k\"");
  EXPECT_EQ(parsed(R"({"a":{"a":1},"b":{"a":2}})").members().size(), 2u);  // one per object is fine
  EXPECT_EQ(parsed(R"({"a":1,"A":2,"a ":3})").members().size(), 3u);
}

TEST(JsonTest, InvalidUtf8) {
  refused("\"\xc0\xaf\"", 1, "UTF-8");                  // overlong 2-byte lead
  refused("\"\xc1\xbf\"", 1, "UTF-8");
  refused("\"\xe0\x80\xaf\"", 1, "UTF-8");              // overlong 3-byte
  refused("\"\xe0\x9f\xbf\"", 1, "UTF-8");
  refused("\"\xf0\x80\x80\xaf\"", 1, "UTF-8");          // overlong 4-byte
  refused("\"\xf0\x8f\xbf\xbf\"", 1, "UTF-8");
  refused("\"\xed\xa0\x80\"", 1, "UTF-8");              // U+D800 encoded
  refused("\"\xed\xbf\xbf\"", 1, "UTF-8");              // U+DFFF encoded
  refused("\"\xf4\x90\x80\x80\"", 1, "UTF-8");          // above U+10FFFF
  for (int lead = 0xf5; lead <= 0xff; ++lead) refused("\"" + std::string(1, char(lead)) + "\x80\x80\x80\"", 1, "UTF-8");
  refused("\"\x80\"", 1, "UTF-8");                      // lone continuation byte
  refused("\"ab\xbf\"", 3, "UTF-8");
  refused("\"\xe2\x28\xa1\"", 2, "continuation");       // bad continuation, at that byte
  refused("\"\xf0\x9f\x98\x41\"", 4, "continuation");
  refused("\"\xc3\"", 2, "continuation");               // the closing quote is no continuation
  refused("\"\xe2\x82", 1, "truncated");                // input ends mid-sequence
  refused("\"\xf0", 1, "truncated");
  refused("{\"k\xff\":1}", 3, "UTF-8");                 // in a key
  refused("\xc3\xa9", 0, "unexpected character");       // outside strings
  refused("\xef\xbb\xbf{}", 0, "\\xef");                // no byte order mark
}

TEST(JsonTest, UnpairedSurrogateEscapes) {
  refused(R"("\ud800")", 1, "surrogate");
  refused(R"("ab\ud800x")", 3, "surrogate");
  refused(R"("\udc00")", 1, "surrogate");                // a low surrogate first
  refused(R"("\udfff\ud800")", 1, "surrogate");
  refused(R"("\ud800\u0041")", 1, "surrogate");
  refused(R"("\ud800\ud800")", 1, "surrogate");
  refused(R"("\ud800\n")", 1, "surrogate");
  refused(R"("\ud800\)", 1, "surrogate");
  refused(R"("\ud800\u12)", 9, "truncated");             // the pair's second escape is cut short
}

TEST(JsonTest, BadEscapes) {
  refused(R"("\x")", 1, "invalid escape");
  refused(R"("\U0041")", 1, "invalid escape");
  refused(R"("\')", 1, "invalid escape");
  refused(R"("\u12G4")", 5, "hex digit");
  refused(R"("\u12")", 3, "truncated");
  refused("\"\\", 2, "unterminated escape");
}

TEST(JsonTest, ControlCharactersInStrings) {
  refused("\"a\x01\"", 2, "control character");
  refused("\"a\nb\"", 2, "control character");
  refused("\"\t\"", 1, "control character");
  refused(std::string("\"\0\"", 3), 1, "control character");
  refused("\"\x1f\"", 1, "control character");
  EXPECT_EQ(parsed("\"\x7f\"").str(), "\x7f");  // DEL is no control character to JSON
}

TEST(JsonTest, BadNumbers) {
  refused("01", 0, "leading zero");
  refused("-01", 0, "leading zero");
  refused("00", 0, "leading zero");
  refused("[1, 02]", 4, "leading zero");
  refused("-", 0, "invalid number");
  refused("-a", 0, "invalid number");
  refused("1.", 0, "after '.'");
  refused("1.e5", 0, "after '.'");
  refused("1e", 0, "exponent");
  refused("1e+", 0, "exponent");
  refused("[2E-]", 1, "exponent");
  refused(".5", 0, "unexpected character '.'");
  refused("+1", 0, "unexpected character '+'");
  refused("--1", 0, "invalid number");
  refused("NaN", 0, "unexpected character 'N'");
  refused("Infinity", 0, "unexpected character 'I'");
  refused("-Infinity", 0, "invalid number");
  refused("0x10", 1, "after the JSON value");
  refused("1.5.2", 3, "after the JSON value");
}

TEST(JsonTest, TrailingGarbage) {
  refused("{} {}", 3, "after the JSON value");
  refused("1 2", 2, "after the JSON value");
  refused("[1]]", 3, "after the JSON value");
  refused("nullx", 4, "after the JSON value");
  refused("\"a\"\"b\"", 3, "after the JSON value");
  refused(std::string("{}\0", 3), 2, "after the JSON value");
}

TEST(JsonTest, UnterminatedValues) {
  refused("", 0, "end of input");
  refused("   ", 3, "end of input");
  refused("\"abc", 4, "unterminated string");
  refused("{\"ab", 4, "unterminated string");
  refused("[1,2", 4, "unterminated array");
  refused("[1,", 3, "end of input");
  refused("[", 1, "end of input");
  refused("{\"a\":1", 6, "unterminated object");
  refused("{\"a\"", 4, "expected ':'");
  refused("{\"a\":", 5, "end of input");
  refused("{", 1, "expected a string key");
  refused("{\"a\":1,", 7, "expected a string key");
}

TEST(JsonTest, BadStructure) {
  refused("{1:2}", 1, "expected a string key");
  refused("{'a':2}", 1, "expected a string key");
  refused("{\"a\" 2}", 5, "expected ':'");
  refused("{\"a\":1 \"b\":2}", 7, "expected ',' or '}'");
  refused("{\"a\":1,}", 7, "expected a string key");
  refused("[1 2]", 3, "expected ',' or ']'");
  refused("[1,]", 3, "unexpected character ']'");
  refused("[,1]", 1, "unexpected character ','");
  refused("{\"a\":1]", 6, "expected ',' or '}'");
  refused("[1}", 2, "expected ',' or ']'");
  refused("'a'", 0, "unexpected character");
  refused("// c\n{}", 0, "unexpected character '/'");
}

TEST(JsonTest, BadLiterals) {
  refused("tru", 0, "invalid literal");
  refused("True", 0, "unexpected character 'T'");
  refused("nul", 0, "invalid literal");
  refused("[fals]", 1, "invalid literal");
  refused("{\"a\":nil}", 5, "invalid literal");
  refused("undefined", 0, "unexpected character 'u'");
}

TEST(JsonTest, FirstErrorWins) {
  // The depth error inside the array is reported, not the unterminated array around it.
  refused("[[[", 2, "nesting", 2);
}

}  // namespace
}  // namespace evald::text
