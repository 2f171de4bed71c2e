#include "cc/congestion/cc_registry.h"

#include <array>

#include "cc/congestion/cubic.h"
#include "cc/congestion/dctcp.h"
#include "cc/congestion/reno.h"

namespace vsw::congestion {

namespace {
// One row per algorithm. A table rather than self-registering static objects:
// a static library drops object files nothing references, and their rows with them.
constexpr std::array<const CcOps*, 4> kAlgorithms = {&kRenoOps, &kNewRenoOps, &kCubicOps, &kDctcpOps};
}  // namespace

const CcOps* cc_lookup(std::string_view name) {
  for (const CcOps* ops : kAlgorithms)
    if (name == ops->name) return ops;
  return nullptr;
}

std::span<const CcOps* const> cc_algorithms() { return kAlgorithms; }

}  // namespace vsw::congestion
