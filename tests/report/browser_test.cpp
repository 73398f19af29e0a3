// The page in a real browser: headless Chromium parses report.html and the DOM it builds holds
// the scoreboard, the disqualification and the Korean names, and no script element.
#include "round_fixture.hpp"

#include "report.hpp"

#include <cstdlib>
#include <sys/wait.h>

using namespace report_test;
namespace rpt = evald::report;

namespace {

bool has(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

// Runs chromium headless with a private HOME; returns its exit status.
int chromium(const TempDir& tmp, const std::string& args, const std::string& stdout_file) {
  std::string cmd = "HOME=" + (tmp / "home") + " timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run --user-data-dir=" +
                    (tmp / "profile") + " " + args + " >" + stdout_file + " 2>" + (tmp / "chromium.err");
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

}  // namespace

TEST(Browser, ChromiumRendersTheReport) {
  if (std::system("command -v chromium >/dev/null 2>&1") != 0) GTEST_SKIP() << "chromium not installed (tools/install-deps.sh installs it)";
  TempDir tmp;
  std::filesystem::create_directories(tmp.path() / "home");
  Round round = make_round(tmp);
  auto key = rpt::load_or_create_key(tmp / "k/report.key");
  ASSERT_TRUE(key.ok()) << key.error();
  rpt::Options opt;
  opt.lang = rpt::Lang::Ko;
  opt.notice = "SAMPLE DATA — not the programme's real scores";
  auto r = rpt::write_report(round.job, opt, *key, tmp / "out");
  ASSERT_TRUE(r.ok()) << r.error();
  std::string page = tmp / "out/report.html";

  ASSERT_EQ(chromium(tmp, "--dump-dom file://" + page, tmp / "dom.html"), 0) << slurp(tmp / "chromium.err");
  std::string dom = slurp(tmp / "dom.html");
  EXPECT_TRUE(has(dom, "90.2")) << dom.substr(0, 2000);
  EXPECT_TRUE(has(dom, "independence: " + kDqReason));
  EXPECT_TRUE(has(dom, "한빛팀"));
  EXPECT_TRUE(has(dom, "실격 전 총점"));
  // The hostile name is text in the DOM, not an element.
  EXPECT_FALSE(has(dom, "<script"));
  EXPECT_TRUE(has(dom, "&lt;script&gt;alert(1)&lt;/script&gt; &amp; \"팀\""));
  EXPECT_TRUE(has(dom, "<svg"));

  // A screenshot: the page paints (Korean fonts, SVG) into a real PNG.
  std::string shot = tmp / "report.png";
  ASSERT_EQ(chromium(tmp, "--hide-scrollbars --window-size=1280,2000 --screenshot=" + shot + " file://" + page, tmp / "shot.out"), 0)
      << slurp(tmp / "chromium.err");
  std::string png = slurp(shot);
  ASSERT_GT(png.size(), 20000u) << "screenshot of " << png.size() << " bytes";
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
}
