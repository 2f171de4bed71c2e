// vswitchd: the switch daemon.
//   vswitchd --config /etc/vswitch/vswitch.toml [--log-level debug] [-- EAL args...]
#include <rte_eal.h>
#include <rte_errno.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <fstream>
#include <thread>

#include "vswitch/config.h"
#include "vswitch/control.h"
#include "vswitch/eal_args.h"
#include "vswitch/log.h"
#include "vswitch/switch.h"
#include "vswitch/telemetry.h"

namespace {
std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop.store(true); }
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vswitch daemon: DPDK userspace switch for QEMU/KVM guests"};
  std::string config_path, log_level, socket, pidfile;
  std::vector<std::string> extra_eal;
  app.add_option("-c,--config", config_path, "TOML configuration file")->required();
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error (overrides config)");
  app.add_option("--socket", socket, "control socket path (overrides config)");
  app.add_option("--pidfile", pidfile, "write the daemon pid here");
  app.add_option("eal", extra_eal, "extra EAL arguments after --");
  CLI11_PARSE(app, argc, argv);

  vsw::SwitchConfig cfg;
  try {
    cfg = vsw::load_config_file(config_path);
  } catch (const std::exception& e) {
    fprintf(stderr, "vswitchd: %s\n", e.what());
    return 2;
  }
  if (!log_level.empty()) cfg.log_level = log_level;
  if (!socket.empty()) cfg.control_socket = socket;
  for (auto& e : extra_eal) cfg.eal_args.push_back(e);
  vsw::log_init(cfg.log_level, cfg.log_file);

  auto args = vsw::build_eal_args(cfg, argv[0]);
  std::vector<char*> eal_argv;
  std::string joined;
  for (auto& s : args) {
    eal_argv.push_back(s.data());
    joined += s + " ";
  }
  vsw::log()->info("EAL: {}", joined);
  if (rte_eal_init(static_cast<int>(eal_argv.size()), eal_argv.data()) < 0) {
    vsw::log()->critical("rte_eal_init failed: {}", rte_strerror(rte_errno));
    return 1;
  }
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  signal(SIGPIPE, SIG_IGN);

  int rc = 0;
  {
    vsw::Switch sw(cfg);
    std::string err;
    vsw::ControlServer ctl(sw, cfg.control_socket);
    if (!sw.start(err)) {
      vsw::log()->critical("switch start failed: {}", err);
      rc = 1;
    } else if (!ctl.start(err)) {
      vsw::log()->critical("{}", err);
      rc = 1;
    } else {
      if (cfg.telemetry) vsw::telemetry_register(sw);
      if (!pidfile.empty()) std::ofstream(pidfile) << getpid() << "\n";
      vsw::log()->info("vswitchd ready");
      auto last = std::chrono::steady_clock::now();
      while (!g_stop.load()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        if (std::chrono::steady_clock::now() - last >= std::chrono::seconds(1)) {
          sw.housekeeping();
          last = std::chrono::steady_clock::now();
        }
      }
      vsw::log()->info("vswitchd stopping");
    }
    ctl.stop();
    sw.shutdown();
  }
  if (!pidfile.empty()) unlink(pidfile.c_str());
  rte_eal_cleanup();
  return rc;
}
