// Builds the EAL command line from the configuration.
#pragma once
#include <string>
#include <vector>

#include "vswitch/config.h"

namespace vsw {

std::vector<std::string> build_eal_args(const SwitchConfig& c, const std::string& argv0);

}  // namespace vsw
