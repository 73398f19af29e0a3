// Suites: manifests, item files, importers, prompts, normalisation and grading.
#include "toy_server.hpp"

#include "records.hpp"
#include "suite.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

using namespace evald::bench;
using bench_test::TempDir;
using bench_test::write_file;

namespace {

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

const char* kMcManifest = "name: t\nversion: 1\ntask: multiple_choice\nitems: [items.jsonl]\n";

}  // namespace

TEST(BenchmarkSuite, SampleSuitesLoadWithHashes) {
  for (std::string name : {"sample-en-reasoning", "sample-ko-general"}) {
    auto s = load_suite(bench_test::kSuites + "/" + name + "/suite.yaml");
    ASSERT_TRUE(s) << s.error();
    EXPECT_EQ(s->name, name);
    EXPECT_TRUE(s->sample);
    EXPECT_EQ(s->items.size(), 24u);
    EXPECT_TRUE(s->debias_rotate);
    ASSERT_EQ(s->files.size(), 1u);
    EXPECT_EQ(s->files[0].sha256, evald::text::sha256_hex(slurp(s->files[0].path)));
    EXPECT_EQ(s->files[0].items, 24u);
    std::set<std::string> cats;
    for (auto& it : s->items) cats.insert(it.category);
    EXPECT_GE(cats.size(), 4u);
  }
  auto en = load_suite(bench_test::kSuites + "/sample-en-reasoning/suite.yaml");
  EXPECT_EQ(en->shots.size(), 2u);
  EXPECT_EQ(en->few_shot_file.sha256, evald::text::sha256_hex(slurp(en->few_shot_file.path)));
}

TEST(BenchmarkSuite, MalformedJsonlNamesFileAndLine) {
  TempDir d;
  write_file(d / "suite.yaml", kMcManifest);
  write_file(d / "items.jsonl",
             "{\"id\":\"a\",\"question\":\"q\",\"choices\":[\"x\",\"y\"],\"answer\":0}\n\n{\"id\":\"b\",\"question\":\"q2\",\"choices\":[\"x\",\"y\"],\"answer\":1\n");
  auto s = load_suite(d / "suite.yaml");
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().find(d / "items.jsonl:3: invalid JSON"), std::string::npos) << s.error();
}

TEST(BenchmarkSuite, ItemFieldErrorsNameFileLineAndField) {
  TempDir d;
  write_file(d / "suite.yaml", kMcManifest);
  struct Case {
    std::string line, want;
  } cases[] = {
      {"{\"id\":\"a\",\"choices\":[\"x\",\"y\"],\"answer\":0}", ":1: missing field \"question\""},
      {"{\"id\":\"a\",\"question\":\"q\",\"choices\":[\"x\"],\"answer\":0}", ":1: field \"choices\" must be a list of 2 to 26"},
      {"{\"id\":\"a\",\"question\":\"q\",\"choices\":[\"x\",\"y\"],\"answer\":2}", ":1: field \"answer\": index 2 is outside"},
      {"{\"id\":\"a\",\"question\":\"q\",\"choices\":[\"x\",\"y\"],\"answer\":\"C\"}", ":1: field \"answer\": \"C\" is not a letter A-B"},
      {"{\"id\":\"a\",\"question\":\"q\",\"choices\":[\"x\",\"y\"],\"answer\":0}\n{\"id\":\"a\",\"question\":\"r\",\"choices\":[\"x\",\"y\"],\"answer\":0}",
       ":2: duplicate item id \"a\" (first at "},
  };
  for (auto& c : cases) {
    write_file(d / "items.jsonl", c.line + "\n");
    auto s = load_suite(d / "suite.yaml");
    ASSERT_FALSE(s) << c.line;
    EXPECT_NE(s.error().find(d / "items.jsonl" + c.want), std::string::npos) << s.error();
  }
}

TEST(BenchmarkSuite, ManifestErrors) {
  TempDir d;
  write_file(d / "items.jsonl", "{\"id\":\"a\",\"question\":\"q\",\"choices\":[\"x\",\"y\"],\"answer\":0}\n");
  struct Case {
    std::string manifest, want;
  } cases[] = {
      {"name: t\nversion: 1\ntask: multiple_choice\nitems: [missing.jsonl]\n", "suite.yaml:4: item file missing.jsonl: " + (d / "missing.jsonl") + ": no such file"},
      {"name: t\nversion: 1\ntask: essay\nitems: [items.jsonl]\n", "suite.yaml:3: \"task\": \"essay\" is not one of"},
      {"name: t\nversion: 1\ntask: multiple_choice\nitems: [items.jsonl]\ncolour: red\n", "suite.yaml:5: unknown key \"colour\""},
      {"name: t\ntask: multiple_choice\nitems: [items.jsonl]\n", "missing key \"version\""},
      {"name: t\nversion: 1\ntask: multiple_choice\nitems: [items.jsonl]\nnormalise: [nfkc]\n", "normalise rule \"nfkc\" is not supported"},
      {"name: t\nversion: 1\ntask: multiple_choice\nitems: [items.jsonl]\nprompt_template: \"{question} {prompt}\"\n", "unknown placeholder {prompt}"},
      {"name: t\nversion: 1\ntask: multiple_choice\nitems: [items.jsonl]\nfew_shot: 2\n", "few_shot 2 needs a few_shot_file"},
      {"name: t\nversion: 1\ntask: exact_match\nitems: [items.jsonl]\n", "items.jsonl:1: missing field \"prompt\""},
      {"name: t\nversion: 1\ntask: [unclosed\n", "suite.yaml:"},
  };
  for (auto& c : cases) {
    write_file(d / "suite.yaml", c.manifest);
    auto s = load_suite(d / "suite.yaml");
    ASSERT_FALSE(s) << c.manifest;
    EXPECT_NE(s.error().find(c.want), std::string::npos) << s.error();
  }
  auto none = load_suite(d / "nope.yaml");
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().find("nope.yaml: no such file"), std::string::npos);
}

TEST(BenchmarkSuite, KmmluAndMmluCsv) {
  TempDir d;
  // KMMLU's layout: question,answer,A,B,C,D,Category,Human Accuracy with a 1-based answer.
  write_file(d / "Accounting-test.csv",
             "question,answer,A,B,C,D,Category,Human Accuracy\n"
             "\"자산, 부채 중 자본은?\",2,가,나,다,라,Accounting,0.5\n"
             "둘째 문제,4,w,x,y,z,Accounting,0.25\n");
  // The original MMLU files: no header, question,A,B,C,D,answer-letter.
  write_file(d / "abstract_algebra_test.csv", "\"Find 1+1, please\",1,2,3,4,B\nWhat is 2*3?,5,6,7,8,b\n");
  write_file(d / "suite.yaml", "name: t\nversion: 1\ntask: multiple_choice\ncategory_field: Category\nitems: [Accounting-test.csv, {path: abstract_algebra_test.csv, format: mmlu_csv}]\n");
  auto s = load_suite(d / "suite.yaml");
  ASSERT_TRUE(s) << s.error();
  ASSERT_EQ(s->items.size(), 4u);
  EXPECT_EQ(s->items[0].text, "자산, 부채 중 자본은?");
  EXPECT_EQ(s->items[0].answer, 1);
  EXPECT_EQ(s->items[0].choices, (std::vector<std::string>{"가", "나", "다", "라"}));
  EXPECT_EQ(s->items[0].category, "Accounting");
  EXPECT_EQ(s->items[1].answer, 3);
  EXPECT_EQ(s->items[2].text, "Find 1+1, please");
  EXPECT_EQ(s->items[2].answer, 1);
  EXPECT_EQ(s->items[2].category, "abstract_algebra");
  EXPECT_EQ(s->items[3].answer, 1);
  EXPECT_EQ(s->items[3].id, "abstract_algebra_test:2");
  EXPECT_EQ(s->files[0].format, "mmlu_csv");

  write_file(d / "abstract_algebra_test.csv", "q,1,2,3,4,E\n");
  auto bad = load_suite(d / "suite.yaml");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("abstract_algebra_test.csv:1: answer \"E\" is neither a letter A-D nor a 1-based number 1-4"), std::string::npos) << bad.error();

  // Found by fuzz_suite: a headerless row of 29 fields made 27 choices, past the letters A-Z.
  std::string wide = "q";
  for (int i = 0; i < 27; ++i) wide += "," + std::to_string(i);
  write_file(d / "abstract_algebra_test.csv", wide + ",A\n");
  auto too_wide = load_suite(d / "suite.yaml");
  ASSERT_FALSE(too_wide);
  EXPECT_NE(too_wide.error().find("abstract_algebra_test.csv:1: expected a header"), std::string::npos) << too_wide.error();
  EXPECT_NE(too_wide.error().find("(2 to 26 choices), found 29 fields"), std::string::npos) << too_wide.error();

  // Found by fuzz_suite: a header naming a choice column after the others (here C twice, the
  // last one wins) read past a short row.
  write_file(d / "Accounting-test.csv", "question,answer,A,B,C,D,Category,C\nq,1,a,b,c,d,x\n");
  write_file(d / "abstract_algebra_test.csv", "q,1,2,3,4,B\n");
  auto short_row = load_suite(d / "suite.yaml");
  ASSERT_FALSE(short_row);
  EXPECT_NE(short_row.error().find("Accounting-test.csv:2: 7 fields, expected at least 8"), std::string::npos) << short_row.error();
}

TEST(BenchmarkSuite, PromptsWithFewShotAndRotation) {
  auto s = load_suite(bench_test::kSuites + "/sample-en-reasoning/suite.yaml");
  ASSERT_TRUE(s) << s.error();
  const Item& it = s->items[0];  // 17 + 25
  std::string p = render_prompt(*s, it, it.choices);
  EXPECT_EQ(p,
            "Question: What is 6 + 7?\nA. 11\nB. 12\nC. 13\nD. 14\nAnswer: C\n\n"
            "Question: Which number comes next: 1, 3, 5, 7, ...?\nA. 8\nB. 9\nC. 10\nD. 11\nAnswer: B\n\n"
            "Question: What is 17 + 25?\nA. 32\nB. 42\nC. 52\nD. 43\nAnswer:");
  std::vector<std::string> rotated{"42", "52", "43", "32"};
  EXPECT_NE(render_prompt(*s, it, rotated).find("What is 17 + 25?\nA. 42\nB. 52"), std::string::npos);
}

TEST(BenchmarkSuite, NormaliseRules) {
  EXPECT_EQ(normalise("  The Eiffel  Tower. ", {"lowercase", "strip_punctuation", "strip_whitespace"}), "the eiffel tower");
  EXPECT_EQ(normalise("The Eiffel Tower", {"lowercase", "strip_articles"}), "eiffel tower");
  EXPECT_EQ(normalise("서울 특별시。", {"strip_punctuation", "remove_whitespace"}), "서울특별시");
  EXPECT_EQ(normalise("「세종」, 대왕!", {"strip_punctuation"}), "세종 대왕");
  EXPECT_EQ(normalise("ABC", {}), "ABC");
}

TEST(BenchmarkSuite, ExtractLetter) {
  EXPECT_EQ(extract_letter("B", 4), 1);
  EXPECT_EQ(extract_letter("(C) because", 4), 2);
  EXPECT_EQ(extract_letter("A good question. The answer is D.", 4), 3);
  EXPECT_EQ(extract_letter("정답: B입니다", 4), 1);
  EXPECT_EQ(extract_letter("E", 4), -1);
  EXPECT_EQ(extract_letter("Because", 4), -1);
  EXPECT_EQ(extract_letter("", 4), -1);
}

TEST(BenchmarkSuite, GradeExactMatchAndGeneration) {
  TempDir d;
  write_file(d / "em.jsonl", "{\"id\":\"1\",\"prompt\":\"Capital of France?\",\"answers\":[\"Paris\",\"파리\"]}\n");
  write_file(d / "em.yaml", "name: em\nversion: 1\ntask: exact_match\nnormalise: [lowercase, strip_punctuation, strip_whitespace]\nitems: [em.jsonl]\n");
  auto em = load_suite(d / "em.yaml");
  ASSERT_TRUE(em) << em.error();
  std::string x;
  EXPECT_TRUE(grade_text(*em, em->items[0], "  PARIS.\nIt is the capital.", &x));
  EXPECT_EQ(x, "paris");
  EXPECT_TRUE(grade_text(*em, em->items[0], "파리!", &x));
  EXPECT_FALSE(grade_text(*em, em->items[0], "Lyon", &x));
  EXPECT_FALSE(grade_text(*em, em->items[0], "The answer is Paris", &x));

  write_file(d / "gen.jsonl",
             "{\"id\":\"r\",\"prompt\":\"2+2?\",\"regex\":\"\\\\b4\\\\b\"}\n"
             "{\"id\":\"c\",\"prompt\":\"colours\",\"contains\":[\"red\",\"blue\"]}\n");
  write_file(d / "gen.yaml", "name: gen\nversion: 1\ntask: generation\nnormalise: [lowercase]\nitems: [gen.jsonl]\n");
  auto gen = load_suite(d / "gen.yaml");
  ASSERT_TRUE(gen) << gen.error();
  EXPECT_TRUE(grade_text(*gen, gen->items[0], "It is 4.", &x));
  EXPECT_EQ(x, "4");
  EXPECT_FALSE(grade_text(*gen, gen->items[0], "It is 44.", &x));
  EXPECT_TRUE(grade_text(*gen, gen->items[1], "Red and BLUE", &x));
  EXPECT_FALSE(grade_text(*gen, gen->items[1], "red only", &x));

  write_file(d / "gen.jsonl", "{\"id\":\"r\",\"prompt\":\"2+2?\",\"regex\":\"(unclosed\"}\n");
  auto bad = load_suite(d / "gen.yaml");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("gen.jsonl:1: field \"regex\": invalid regular expression"), std::string::npos) << bad.error();
  write_file(d / "gen.jsonl", "{\"id\":\"r\",\"prompt\":\"2+2?\"}\n");
  bad = load_suite(d / "gen.yaml");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("gen.jsonl:1: a generation item needs a grading rule"), std::string::npos) << bad.error();
}

TEST(BenchmarkSuite, HarnessResultsBothLayouts) {
  // lm-evaluation-harness >= 0.4: "metric,filter" keys, an alias, stderr "N/A" for some.
  std::string v04 = R"({"results": {"kmmlu": {"alias": "kmmlu", "acc,none": 0.4123, "acc_stderr,none": 0.0052,
      "acc_norm,none": 0.43, "acc_norm_stderr,none": "N/A"}, "hellaswag": {"acc,none": 0.61, "acc_stderr,none": 0.004}},
      "versions": {"kmmlu": 2.0}})";
  auto r = parse_harness_results(v04, "r.json");
  ASSERT_TRUE(r) << r.error();
  ASSERT_EQ(r->size(), 3u);
  // Sorted by task, then (metric, filter).
  EXPECT_EQ((*r)[0].task, "hellaswag");
  EXPECT_EQ((*r)[1].task, "kmmlu");
  EXPECT_EQ((*r)[1].metric, "acc");
  EXPECT_EQ((*r)[1].filter, "none");
  EXPECT_DOUBLE_EQ((*r)[1].value, 0.4123);
  ASSERT_TRUE((*r)[1].stderr_value);
  EXPECT_DOUBLE_EQ(*(*r)[1].stderr_value, 0.0052);
  EXPECT_EQ((*r)[2].metric, "acc_norm");
  EXPECT_FALSE((*r)[2].stderr_value);

  std::string old = R"({"results": {"arc_easy": {"acc": 0.75, "acc_stderr": 0.01}}})";
  r = parse_harness_results(old, "old.json");
  ASSERT_TRUE(r) << r.error();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].filter, "");
  EXPECT_DOUBLE_EQ(*(*r)[0].stderr_value, 0.01);

  auto bad = parse_harness_results("{\"results\": 3}", "x.json");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("x.json: no \"results\" object"), std::string::npos);
  bad = parse_harness_results("{\n\"results\": {,}}", "y.json");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("y.json:2: invalid JSON"), std::string::npos) << bad.error();
}
