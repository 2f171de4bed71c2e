// Client side of the control protocol (used by vswitchctl and tests).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace vsw {

// Sends one request; throws std::runtime_error on connection failure.
nlohmann::json ctl_request(const std::string& socket, const std::string& cmd, const nlohmann::json& args,
                           int timeout_ms = 10000);
// Turns command-line words into args: "k=v" -> args[k], others -> args.argv.
nlohmann::json ctl_args_from_words(const std::vector<std::string>& words);

}  // namespace vsw
