// vswitchctl: talk to vswitchd over its control socket.
//   vswitchctl [-s SOCKET] [--json] COMMAND [ARGS...]
//   vswitchctl stage list | stage enable NAME | stage disable NAME
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "vswitch/ctl_client.h"
#include "vswitch/ctl_format.h"

int main(int argc, char** argv) {
  CLI::App app{"vswitchctl: control the vswitch daemon"};
  std::string sock = "/run/vswitch/vswitchd.sock";
  bool as_json = false;
  int timeout_ms = 10000;
  std::vector<std::string> words;
  app.add_option("-s,--socket", sock, "control socket of vswitchd")->envname("VSWITCH_SOCKET");
  app.add_flag("--json", as_json, "print the raw JSON result");
  app.add_option("-t,--timeout-ms", timeout_ms, "reply timeout");
  app.add_option("command", words, "command and arguments (try: help)")->required();
  app.positionals_at_end();
  CLI11_PARSE(app, argc, argv);

  std::string cmd = words.front();
  words.erase(words.begin());
  // Two-word spellings ("stage list", "pmd rxq show") map to hyphenated commands.
  if (cmd == "stage" && !words.empty()) {
    cmd += "-" + words.front();
    words.erase(words.begin());
  }
  try {
    nlohmann::json r = vsw::ctl_request(sock, cmd, vsw::ctl_args_from_words(words), timeout_ms);
    if (!r.value("ok", false)) {
      std::cerr << "vswitchctl: " << r.value("error", "failed") << "\n";
      return 1;
    }
    if (as_json) std::cout << r["result"].dump(2) << "\n";
    else std::cout << vsw::format_result(cmd, r["result"]);
  } catch (const std::exception& e) {
    std::cerr << "vswitchctl: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
