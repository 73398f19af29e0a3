// The real evald binary driven through evalctl and its control socket.
#define EVALD_TEST_WITH_ZMQ
#include <gtest/gtest.h>
#include <grp.h>
#include <sys/stat.h>

#include "../common/test_util.hpp"

using namespace evald;
using namespace evald::test;

namespace {

const char* kPipeline = R"(name: demo
description: read a value per entrant, sum them
stages:
  - id: read
    plugin: file-value
    per: entrant
    retries: 0
    config:
      scale: 2
  - id: total
    plugin: sum
    per: round
    after: [read]
)";

// A daemon with the demo pipeline, a competition, a round and three entrants (one broken).
void set_up_round(Daemon& d, TempDir& tmp) {
  write_file(tmp / "demo.yaml", kPipeline);
  write_file(tmp / "a.txt", "1.5\n");
  write_file(tmp / "b.txt", "2.5\n");
  write_file(tmp / "c.txt", "not a number\n");
  ASSERT_EQ(d.ctl("pipeline load " + quote(tmp / "demo.yaml")).code, 0);
  ASSERT_EQ(d.ctl("competition create k-ai --name '독자 AI 파운데이션 모델'").code, 0);
  ASSERT_EQ(d.ctl("round create k-ai round-1 --pipeline demo").code, 0);
  for (auto e : {"a", "b", "c"})
    ASSERT_EQ(d.ctl(std::string("entrant add k-ai team-") + e + " --round round-1 --set value_file=" + quote(tmp / (std::string(e) + ".txt"))).code, 0);
}

}  // namespace

TEST(Daemon, RunsARoundEndToEndThroughEvalctl) {
  TempDir tmp;
  Daemon d(tmp / "data");
  ASSERT_TRUE(d.start()) << d.log();
  set_up_round(d, tmp);
  auto r = d.ctl("run start k-ai round-1 --wait");
  EXPECT_EQ(r.code, 4) << "one entrant's job failed:\n" << r.out;
  EXPECT_NE(r.out.find("read   3     0   2    0       0        2     1"), std::string::npos) << r.out;
  auto out = d.ctl("--json run outputs run-000001 --stage total");
  EXPECT_EQ(out.code, 0);
  EXPECT_NE(out.out.find("\"total\":8"), std::string::npos) << out.out;
  EXPECT_NE(out.out.find("\"entrant\":\"team-c\""), std::string::npos) << "missing entrant listed:\n" << out.out;
  auto st = d.ctl("run status run-000001 --jobs");
  EXPECT_NE(st.out.find("not a number"), std::string::npos) << st.out;
  auto list = d.ctl("run list");
  EXPECT_NE(list.out.find("run-000001  k-ai"), std::string::npos) << list.out;
  auto audit = d.ctl("audit verify");
  EXPECT_EQ(audit.code, 0) << audit.out;
  auto entries = d.ctl("audit list");
  EXPECT_NE(entries.out.find("run.start"), std::string::npos);
  EXPECT_NE(entries.out.find("@evalctl"), std::string::npos) << "declared actor recorded";
  EXPECT_NE(entries.out.find("(uid " + std::to_string(geteuid()) + ", pid "), std::string::npos)
      << "verified peer recorded:\n" << entries.out;
  EXPECT_EQ(d.ctl("shutdown").code, 0);
  EXPECT_EQ(d.wait_exit(), 0);
  auto offline = run(std::string(EVALD_BIN) + " --data-dir " + quote(d.data_dir()) + " --verify-audit");
  EXPECT_EQ(offline.code, 0) << offline.out;
  EXPECT_NE(offline.out.find("audit log intact"), std::string::npos) << offline.out;
}

TEST(Daemon, EvalctlSaysWhenTheDaemonIsNotRunning) {
  TempDir tmp;
  auto r = run(std::string(EVALCTL_BIN) + " --data-dir " + quote(tmp / "none") + " status");
  EXPECT_EQ(r.code, 3);
  EXPECT_NE(r.out.find("evald is not running"), std::string::npos) << r.out;
  auto j = run(std::string(EVALCTL_BIN) + " --json --data-dir " + quote(tmp / "none") + " run list");
  EXPECT_EQ(j.code, 3);
  EXPECT_NE(j.out.find("\"ok\":false"), std::string::npos) << j.out;
}

TEST(Daemon, EvalctlHelpAndUsageErrors) {
  auto h = run(std::string(EVALCTL_BIN) + " --help");
  EXPECT_EQ(h.code, 0);
  EXPECT_NE(h.out.find("run start COMP ROUND"), std::string::npos);
  auto sub = run(std::string(EVALCTL_BIN) + " run wait --help");
  EXPECT_EQ(sub.code, 0);
  EXPECT_NE(sub.out.find("Usage: evalctl run wait RUN"), std::string::npos) << sub.out;
  EXPECT_EQ(run(std::string(EVALCTL_BIN) + " frobnicate").code, 2);
  EXPECT_EQ(run(std::string(EVALCTL_BIN) + " round create onlyone").code, 2);
  EXPECT_EQ(run(std::string(EVALCTL_BIN) + " run list --bogus").code, 2);
  auto e = run(std::string(EVALD_BIN) + " --help");
  EXPECT_EQ(e.code, 0);
  EXPECT_NE(e.out.find("--validate FILE"), std::string::npos);
  EXPECT_EQ(run(std::string(EVALD_BIN) + " --no-such-flag").code, 2);
}

TEST(Daemon, SecondDaemonOnTheSameDataDirIsRefused) {
  TempDir tmp;
  Daemon a(tmp / "data");
  ASSERT_TRUE(a.start());
  Daemon b(tmp / "data");
  ASSERT_TRUE(b.spawn());
  EXPECT_EQ(b.wait_exit(), 3);
  auto log = read_file(tmp / "data.log");
  EXPECT_NE(log.find("is in use by another evald process"), std::string::npos) << log;
  EXPECT_EQ(a.ctl("status").code, 0) << "the first daemon is unharmed";
}

TEST(Daemon, ValidateUsesTheStartPath) {
  TempDir tmp;
  write_file(tmp / "good.yaml", kPipeline);
  write_file(tmp / "bad.yaml", "name: demo\nstages:\n  - id: read\n    plugin: file-value\n    config:\n      scale: [1]\n");
  std::string base = std::string(EVALD_BIN) + " --plugin-dir " + EVALD_PLUGIN_DIR + " --validate ";
  auto g = run(base + quote(tmp / "good.yaml"));
  EXPECT_EQ(g.code, 0) << g.out;
  EXPECT_NE(g.out.find("is valid: 2 stage(s): read total"), std::string::npos) << g.out;
  auto b = run(base + quote(tmp / "bad.yaml"));
  EXPECT_EQ(b.code, 1);
  EXPECT_NE(b.out.find("bad.yaml:6:14: stages[0] (read).config.scale: expected number, got list"), std::string::npos) << b.out;
  auto m = run(base + quote(tmp / "missing.yaml"));
  EXPECT_EQ(m.code, 1);
  EXPECT_NE(m.out.find("cannot open pipeline file"), std::string::npos);
}

TEST(Daemon, BrokenPluginsAreListedAndDoNotStopTheDaemon) {
  TempDir tmp;
  write_file(tmp / "plugins/broken.so", "this is not ELF");
  Daemon d(tmp / "data", {"--plugin-dir", tmp / "plugins", "--plugin-dir", EVALD_BAD_PLUGIN_DIR});
  ASSERT_TRUE(d.start()) << d.log();
  auto r = d.ctl("plugins");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("file-value"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("broken.so: cannot load shared library"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ABI 2.0, this daemon speaks ABI 1.1"), std::string::npos) << r.out;
  auto h = d.ctl("plugin help file-value");
  EXPECT_NE(h.out.find("scale (number, default 1)"), std::string::npos) << h.out;
}

TEST(Daemon, ControlSocketBelongsToItsOwner) {
  TempDir tmp;
  Daemon d(tmp / "data");
  ASSERT_TRUE(d.start());
  struct stat sock, dir;
  ASSERT_EQ(stat((tmp / "data/control.sock").c_str(), &sock), 0);
  ASSERT_EQ(stat((tmp / "data").c_str(), &dir), 0);
  EXPECT_EQ(sock.st_mode & 0777, 0600u);
  EXPECT_EQ(dir.st_mode & 0777, 0700u);
}

TEST(Daemon, SigtermDrainsInFlightJobs) {
  TempDir tmp;
  Daemon d(tmp / "data");
  ASSERT_TRUE(d.start());
  write_file(tmp / "slow.yaml", "name: slow\nstages:\n  - id: s\n    plugin: test-behave\n    config: {sleep_ms: 700}\n");
  ASSERT_EQ(d.ctl("pipeline load " + quote(tmp / "slow.yaml")).code, 0);
  ASSERT_EQ(d.ctl("competition create c").code, 0);
  ASSERT_EQ(d.ctl("round create c r --pipeline slow").code, 0);
  ASSERT_EQ(d.ctl("entrant add c e1 --round r").code, 0);
  ASSERT_EQ(d.ctl("run start c r").code, 0);
  // Signal only once the job is in flight.
  bool in_flight = false;
  for (int i = 0; i < 200 && !in_flight; ++i) {
    in_flight = d.ctl("run status run-000001 --jobs").out.find("e1    running") != std::string::npos;
    if (!in_flight) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(in_flight) << d.ctl("run status run-000001 --jobs").out;
  d.kill(SIGTERM);
  EXPECT_EQ(d.wait_exit(), 0);
  auto log = d.log();
  EXPECT_NE(log.find("draining"), std::string::npos) << log;
  // The in-flight job finished before exit: a restart finds the run done.
  Daemon again(tmp / "data");
  ASSERT_TRUE(again.start());
  auto st = again.ctl("run status run-000001");
  EXPECT_NE(st.out.find("run-000001  done"), std::string::npos) << st.out;
}

TEST(Daemon, SighupReloadsPipelineFiles) {
  TempDir tmp;
  Daemon d(tmp / "data");
  ASSERT_TRUE(d.start());
  write_file(tmp / "p.yaml", "name: p\nstages:\n  - id: s\n    plugin: test-behave\n");
  ASSERT_EQ(d.ctl("pipeline load " + quote(tmp / "p.yaml")).code, 0);
  write_file(tmp / "p.yaml", "name: p\nstages:\n  - id: s\n    plugin: test-behave\n  - id: t\n    plugin: test-behave\n    after: [s]\n");
  d.kill(SIGHUP);
  bool reloaded = false;
  for (int i = 0; i < 100 && !reloaded; ++i) {
    reloaded = d.ctl("pipeline list").out.find("t (test-behave") != std::string::npos;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(reloaded) << d.ctl("pipeline list").out;
  // A broken edit keeps the previous definition.
  write_file(tmp / "p.yaml", "name: p\nstages: [oops\n");
  d.kill(SIGHUP);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_NE(d.ctl("pipeline list").out.find("t (test-behave"), std::string::npos);
  EXPECT_NE(d.log().find("reload kept the previous definition"), std::string::npos);
}

TEST(Daemon, FullDiskGivesAClearErrorAndLosesNothing) {
  TempDir tmp;
  std::string data = tmp / "data";
  {
    Daemon d(data);
    ASSERT_TRUE(d.start());
    ASSERT_EQ(d.ctl("competition create before").code, 0);
    ASSERT_EQ(d.ctl("shutdown").code, 0);
    d.wait_exit();
  }
  // The same daemon, now with a file size limit standing in for a full disk.
  std::string cmd = "trap '' XFSZ; ulimit -f 512; exec " + std::string(EVALD_BIN) + " --data-dir " + quote(data) +
                    " --log-file " + quote(data + ".log") + " --plugin-dir " + EVALD_PLUGIN_DIR;
  pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/bash", "bash", "-c", cmd.c_str(), nullptr);
    _exit(127);
  }
  Daemon client(data);
  bool up = false;
  for (int i = 0; i < 200 && !up; ++i) {
    up = client.ctl("status").code == 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_TRUE(up) << read_file(data + ".log");
  // One write larger than the space left.
  Value req, sub;
  sub.set("blob", std::string(700 * 1024, 'x'));
  req.set("op", "entrant.add");
  req.set("competition", "before");
  req.set("id", "huge");
  req.set("submission", sub);
  auto r = control(data, req);
  EXPECT_FALSE(r.get_bool("ok")) << to_json(r).substr(0, 300);
  EXPECT_NE(r.get_string("error").find("store write failed"), std::string::npos) << r.get_string("error");
  EXPECT_EQ(client.ctl("status").code, 0) << "still serving";
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  Daemon d(data);
  ASSERT_TRUE(d.start()) << d.log();
  auto comps = d.ctl("competition list");
  EXPECT_NE(comps.out.find("before"), std::string::npos) << comps.out;
  EXPECT_EQ(d.ctl("audit verify").code, 0);
}

TEST(Daemon, CorruptControlRequestsGetErrorsAndTheDaemonKeepsServing) {
  TempDir tmp;
  Daemon d(tmp / "data");
  ASSERT_TRUE(d.start());
  // A 5-byte header claiming a 4-billion-element array, random bytes, an empty frame.
  for (std::string bytes : {std::string("\xdd\xff\xff\xff\xff", 5), std::string("\xc1\x00garbage"), std::string()}) {
    std::string reply = control_raw(d.data_dir(), bytes);
    auto v = msgpack::decode(reply);
    ASSERT_TRUE(v.ok()) << "reply is msgpack";
    EXPECT_FALSE(v->get_bool("ok"));
    EXPECT_NE(v->get_string("error").find("malformed request"), std::string::npos) << v->get_string("error");
  }
  Value unknown;
  unknown.set("op", "drop-tables");
  EXPECT_NE(control(d.data_dir(), unknown).get_string("error").find("unknown op"), std::string::npos);
  EXPECT_EQ(d.ctl("status").code, 0);
}

TEST(Daemon, ControlGroupOpensTheSocketToThatGroup) {
  TempDir tmp;
  Daemon d(tmp / "data", {"--control-group", "daemon"});
  ASSERT_TRUE(d.start()) << d.log();
  struct stat sock, dir;
  ASSERT_EQ(stat((tmp / "data/control.sock").c_str(), &sock), 0);
  ASSERT_EQ(stat((tmp / "data").c_str(), &dir), 0);
  EXPECT_EQ(sock.st_mode & 0777, 0660u);
  EXPECT_EQ(dir.st_mode & 0777, 0750u);
  struct group* g = getgrnam("daemon");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(sock.st_gid, g->gr_gid);
  Daemon bad(tmp / "other", {"--control-group", "no-such-group-xyz"});
  EXPECT_FALSE(bad.start());
  EXPECT_EQ(bad.wait_exit(), 3);
  EXPECT_NE(read_file(tmp / "other.log").find("no group named \"no-such-group-xyz\""), std::string::npos) << read_file(tmp / "other.log");
}

TEST(Daemon, ACrashingPluginInItsOwnProcessDoesNotTakeTheDaemonDown) {
  TempDir tmp;
  Daemon d(tmp / "data");
  ASSERT_TRUE(d.start());
  write_file(tmp / "p.yaml",
             "name: crashy\nstages:\n  - id: s\n    plugin: test-behave\n    isolation: process\n    retries: 0\n"
             "    config: {mode: crash, only: [bad]}\n");
  ASSERT_EQ(d.ctl("pipeline load " + quote(tmp / "p.yaml")).code, 0);
  ASSERT_EQ(d.ctl("competition create c").code, 0);
  ASSERT_EQ(d.ctl("round create c r --pipeline crashy").code, 0);
  ASSERT_EQ(d.ctl("entrant add c good --round r").code, 0);
  ASSERT_EQ(d.ctl("entrant add c bad --round r").code, 0);
  auto r = d.ctl("run start c r --wait");
  EXPECT_EQ(r.code, 4) << r.out;
  auto jobs = d.ctl("run status run-000001 --jobs");
  EXPECT_NE(jobs.out.find("died: signal 6 (Aborted)"), std::string::npos) << jobs.out;
  EXPECT_NE(jobs.out.find("good  done"), std::string::npos) << jobs.out;
  EXPECT_EQ(d.ctl("status").code, 0) << "the daemon is still up";
}
