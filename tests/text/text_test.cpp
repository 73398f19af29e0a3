// The shared readers of outside input: RFC 4180 CSV, record files (CSV, JSON, JSONL) with
// file and line for each record, UTF-8 checks and ISO 8601 times.
#include "csv.hpp"
#include "records.hpp"

#include <evald/time.hpp>

#include <gtest/gtest.h>

using namespace evald::text;
using evald::Value;

namespace {

std::vector<CsvRecord> csv(std::string_view text) {
  std::vector<CsvRecord> out;
  CsvError e;
  EXPECT_TRUE(parse_csv(text, &out, &e)) << "line " << e.line << ": " << e.message;
  return out;
}

CsvError csv_error(std::string_view text) {
  std::vector<CsvRecord> out;
  CsvError e;
  EXPECT_FALSE(parse_csv(text, &out, &e)) << text;
  return e;
}

}  // namespace

TEST(Csv, Rfc4180Fields) {
  auto r = csv("a,b,c\r\n1,\"two, with comma\",\"say \"\"hi\"\"\"\r\n\"multi\nline\",,x\n");
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[1].fields, (std::vector<std::string>{"1", "two, with comma", "say \"hi\""}));
  EXPECT_EQ(r[2].fields, (std::vector<std::string>{"multi\nline", "", "x"}));
  EXPECT_EQ(r[2].line, 3u);
  auto t = csv("a,b\n\n1,\n2,3");  // blank line skipped, trailing empty field, no final newline
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[1].fields, (std::vector<std::string>{"1", ""}));
  EXPECT_EQ(t[2].line, 4u);
  EXPECT_EQ(t[2].fields, (std::vector<std::string>{"2", "3"}));
}

TEST(Csv, ByteOrderMarkAndKorean) {
  auto r = csv("\xEF\xBB\xBF평가위원,점수\n김민준,9\n");
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].fields[0], "평가위원") << "the BOM is not part of the first name";
  EXPECT_EQ(r[1].fields[0], "김민준");
}

TEST(Csv, MalformedInputNamesLineAndOffset) {
  auto e = csv_error("a,b\n1,\"open\n2,3\n");
  EXPECT_EQ(e.line, 2u);
  EXPECT_NE(e.message.find("never closed"), std::string::npos);
  e = csv_error("a,b\n1,x\"y\n");
  EXPECT_EQ(e.line, 2u);
  EXPECT_EQ(e.offset, 7u);
  EXPECT_NE(e.message.find("quote inside an unquoted field"), std::string::npos);
  e = csv_error("a,b\n\"q\"x,1\n");
  EXPECT_NE(e.message.find("after the closing quote"), std::string::npos);
  e = csv_error("a,b\n1,\xC3\x28\n");
  EXPECT_EQ(e.line, 2u);
  EXPECT_EQ(e.offset, 6u);
  EXPECT_NE(e.message.find("invalid UTF-8"), std::string::npos);
  std::vector<CsvRecord> out;
  CsvError big;
  EXPECT_FALSE(parse_csv("a,b,c,d\n", &out, &big, 3));
  EXPECT_NE(big.message.find("more than 3 fields"), std::string::npos);
}

TEST(Utf8, RejectsOverlongSurrogatesAndOutOfRange) {
  EXPECT_EQ(invalid_utf8_at("plain 한국어 ✓ 😀"), std::string_view::npos);
  EXPECT_EQ(invalid_utf8_at("ab\xC0\xAF"), 2u);          // overlong '/'
  EXPECT_EQ(invalid_utf8_at("\xED\xA0\x80"), 0u);        // surrogate U+D800
  EXPECT_EQ(invalid_utf8_at("x\xF4\x90\x80\x80"), 1u);   // past U+10FFFF
  EXPECT_EQ(invalid_utf8_at("\xE2\x82"), 0u);            // truncated
}

TEST(Records, CsvJsonAndJsonlAgree) {
  auto c = parse_records("id,user,score\nv1,김,5\nv2,lee,3\n", "votes.csv", "csv");
  auto j = parse_records("[{\"id\": \"v1\", \"user\": \"김\", \"score\": 5},\n {\"id\": \"v2\", \"user\": \"lee\", \"score\": 3}]", "votes.json", "json");
  auto l = parse_records("{\"id\": \"v1\", \"user\": \"김\", \"score\": 5}\n\n{\"id\": \"v2\", \"user\": \"lee\", \"score\": 3}\n", "votes.jsonl", "jsonl");
  for (auto* f : {&c, &j, &l}) {
    ASSERT_TRUE(f->ok()) << f->error();
    ASSERT_EQ((*f)->records.size(), 2u);
    EXPECT_EQ(field_text((*f)->records[0].fields, "user"), "김");
    EXPECT_EQ(*field_number((*f)->records[1].fields, "score"), 3.0);
  }
  EXPECT_EQ(c->records[1].line, 3u);
  EXPECT_EQ(j->records[1].line, 2u);
  EXPECT_EQ(l->records[1].line, 3u);
  EXPECT_EQ(c->sha256, sha256_hex("id,user,score\nv1,김,5\nv2,lee,3\n"));
}

TEST(Records, RowAndFileProblems) {
  auto c = parse_records("id,score\nv1,5,extra\nv2\n", "s.csv", "csv");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->records[0].defect, "row has 3 fields, the header 2");
  EXPECT_TRUE(c->records[1].defect.empty()) << "a short row is read; missing fields are the caller's to reject";
  EXPECT_EQ(field_text(c->records[1].fields, "score"), "");
  EXPECT_NE(field_number(c->records[1].fields, "score").error().find("\"score\" is missing"), std::string::npos);
  Value bad = evald::Map{};
  bad.set("score", "5 points");
  EXPECT_NE(field_number(bad, "score").error().find("not a number: \"5 points\""), std::string::npos);
  bad.set("score", "nan");
  EXPECT_FALSE(field_number(bad, "score").ok());

  EXPECT_NE(parse_records("a,a\n1,2\n", "d.csv", "csv").error().find("d.csv:1: header names column \"a\" twice"), std::string::npos);
  EXPECT_NE(parse_records("", "e.csv", "csv").error().find("no header row"), std::string::npos);
  EXPECT_NE(parse_records("[{\"a\": 1},\n 7]", "n.json", "json").error().find("n.json:2: a record must be a JSON object"), std::string::npos);
  EXPECT_NE(parse_records("[{\"a\": 1},\n {\"a\": }]", "x.json", "json").error().find("x.json:2: invalid JSON"), std::string::npos);
  EXPECT_NE(parse_records("{\"a\": [], \"b\": []}", "two.json", "json").error().find("more than one array"), std::string::npos);
  EXPECT_NE(parse_records("{\"a\": 1}\n{\"a\": 2, \"a\": 3}\n", "l.jsonl", "jsonl").error().find("l.jsonl:2: invalid JSON"), std::string::npos);
  EXPECT_NE(read_records("/nonexistent/votes.csv").error().find("/nonexistent/votes.csv: cannot open"), std::string::npos);
  EXPECT_NE(read_records("votes.txt").error().find("cannot tell the format"), std::string::npos);
}

TEST(Time, Iso8601) {
  EXPECT_EQ(*evald::parse_utc_time("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(*evald::parse_utc_time("2026-11-26T10:00:00.250Z"), 1795687200250);
  EXPECT_EQ(*evald::parse_utc_time("2026-11-26T19:00:00+09:00"), 1795687200000);
  EXPECT_EQ(*evald::parse_utc_time("2026-11-26 10:00:00"), 1795687200000);
  EXPECT_EQ(*evald::parse_utc_time("2024-02-29T00:00:00Z"), 1709164800000);
  EXPECT_FALSE(evald::parse_utc_time("2025-02-29T00:00:00Z"));
  EXPECT_FALSE(evald::parse_utc_time("2026-13-01T00:00:00Z"));
  EXPECT_FALSE(evald::parse_utc_time("2026-11-26"));
  EXPECT_FALSE(evald::parse_utc_time("2026-11-26T10:00:00Zjunk"));
  EXPECT_EQ(evald::format_utc_time(1795687200250), "2026-11-26T10:00:00.250Z");
}

// Found by fuzz_csv: a trailing comma added a field past the limit unchecked.
TEST(Csv, TrailingEmptyFieldCountsTowardsTheLimit) {
  std::vector<CsvRecord> out;
  CsvError e;
  EXPECT_FALSE(parse_csv("a,b,c,", &out, &e, 3));
  EXPECT_NE(e.message.find("more than 3 fields"), std::string::npos);
  EXPECT_TRUE(parse_csv("a,b,", &out, &e, 3));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].fields.size(), 3u);
}
