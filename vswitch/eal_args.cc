#include "vswitch/eal_args.h"

namespace vsw {

std::vector<std::string> build_eal_args(const SwitchConfig& c, const std::string& argv0) {
  std::vector<std::string> a = {argv0, "--file-prefix=" + c.file_prefix};
  bool has_lcores = false;
  for (const auto& e : c.eal_args) has_lcores |= e == "-l" || e.rfind("--lcores", 0) == 0 || e == "-c";
  if (!has_lcores) {
    if (!c.lcore_map.empty()) {
      a.push_back("--lcores=" + c.lcore_map);
    } else {
      std::string l = std::to_string(c.main_lcore);
      for (unsigned p : c.pmd_lcores) l += "," + std::to_string(p);
      a.push_back("-l");
      a.push_back(l);
    }
    a.push_back("--main-lcore=" + std::to_string(c.main_lcore));
  }
  if (c.no_huge) {
    a.push_back("--no-huge");
  }
  a.push_back("-m");
  a.push_back(std::to_string(c.socket_mem_mb));
  for (const auto& e : c.eal_args) a.push_back(e);
  return a;
}

}  // namespace vsw
