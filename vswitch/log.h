// One logger for the whole daemon (spdlog): levels set from config or CLI.
#pragma once
#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace vsw {

std::shared_ptr<spdlog::logger>& log();
// level: trace|debug|info|warn|error|off. file: empty = stderr.
void log_init(const std::string& level, const std::string& file = {});

}  // namespace vsw
