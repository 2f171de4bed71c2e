// Congestion-control algorithms by name ("reno", "newreno", "cubic", "dctcp").
#pragma once
#include <span>
#include <string_view>

#include "cc/congestion/cc_ops.h"

namespace vsw::congestion {

// The ops table registered under name, or nullptr.
const CcOps* cc_lookup(std::string_view name);

// Every registered algorithm, in registration order.
std::span<const CcOps* const> cc_algorithms();

}  // namespace vsw::congestion
