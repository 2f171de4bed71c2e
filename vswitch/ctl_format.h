// Human-readable rendering of control results (vswitchctl without --json).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace vsw {

std::string format_result(const std::string& cmd, const nlohmann::json& r);

}  // namespace vsw
