#include "vswitch/log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

namespace vsw {

std::shared_ptr<spdlog::logger>& log() {
  static std::shared_ptr<spdlog::logger> l = [] {
    auto lg = spdlog::stderr_color_mt("vswitch");
    lg->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%t] %v");
    return lg;
  }();
  return l;
}

void log_init(const std::string& level, const std::string& file) {
  if (!file.empty()) {
    auto lg = spdlog::basic_logger_mt("vswitch-file", file);
    lg->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l [%t] %v");
    log() = lg;
  }
  log()->set_level(spdlog::level::from_str(level));
  log()->flush_on(spdlog::level::info);
}

}  // namespace vsw
