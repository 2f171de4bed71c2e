// Control commands over the monitor stage's connection state:
//   tcp-flows [sort=bytes|rtt|retrans|age] [top=N] [offset=N] [port=NAME] [addr=IP]
//   tcp-flows PAGE          (telemetry: /vswitch/tcp_flows,PAGE — compact rows, 8 a page)
//   tcp-flow PMD:SLOT[:GEN] (one connection in detail)
// Safe while PMDs forward: state is copied on each PMD between two of its
// iterations (Pmd::call), a bounded chunk of slots per call.
#include <stdexcept>

#include "cc/stages/monitor_stage.h"
#include "vswitch/switch.h"

namespace vsw {

namespace {

std::string sarg(const nlohmann::json& a, const char* k) {
  return a.contains(k) && a[k].is_string() ? a[k].get<std::string>() : std::string();
}
size_t narg(const nlohmann::json& a, const char* k, size_t dflt) {
  if (!a.contains(k)) return dflt;
  if (a[k].is_number_unsigned()) return a[k].get<size_t>();
  return std::stoul(a[k].get<std::string>());
}
bool all_digits(const std::string& s) { return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos; }

constexpr size_t kTelemetryPage = 8;  // a DPDK telemetry reply holds 16 KB

}  // namespace

nlohmann::json Switch::tcp_flows(const nlohmann::json& args) {
  if (!dp_ || stage_index("monitor") < 0) throw std::runtime_error("the monitor stage is not available");
  std::vector<std::string> names(kMaxPorts);
  {
    std::lock_guard lk(mu_);
    for (uint16_t i = 0; i < kMaxPorts; ++i)
      if (owned_[i]) names[i] = owned_[i]->name();
  }
  bool in_pipeline = false;
  for (int si : dp_->stage_order) in_pipeline |= si == stage_index("monitor");
  if (!in_pipeline) throw std::runtime_error("the monitor stage is not in the pipeline (stages.order)");

  mon::FlowQuery q;
  const std::string a0 = args.contains("argv") && !args["argv"].empty() ? args["argv"][0].get<std::string>() : "";
  const bool paged = all_digits(a0) || args.contains("page");
  const std::string sort = sarg(args, "sort").empty() ? a0 : sarg(args, "sort");
  if (sort == "rtt") q.sort = mon::SortBy::kRtt;
  else if (sort == "retrans") q.sort = mon::SortBy::kRetrans;
  else if (sort == "age") q.sort = mon::SortBy::kAge;
  else if (sort.empty() || sort == "bytes" || all_digits(sort)) q.sort = mon::SortBy::kBytes;
  else throw std::runtime_error("sort must be bytes, rtt, retrans or age");
  size_t page = 0;
  if (paged) {
    page = all_digits(a0) ? std::stoul(a0) : narg(args, "page", 0);
    q.top = kTelemetryPage;
    q.offset = page * kTelemetryPage;
  } else {
    q.top = narg(args, "top", 20);
    q.offset = narg(args, "offset", 0);
  }
  if (const std::string p = sarg(args, "port"); !p.empty()) {
    q.port = -2;  // no such port: matches nothing
    for (uint16_t i = 0; i < kMaxPorts; ++i)
      if (names[i] == p) q.port = i;
    if (q.port == -2) throw std::runtime_error("no port named '" + p + "'");
  }
  if (const std::string a = sarg(args, "addr"); !a.empty())
    if (!mon::parse_addr(a, q.family, q.addr)) throw std::runtime_error("addr: not an IPv4/IPv6 address: " + a);

  const mon::FlowQueryResult r = mon::query_flows(*dp_, q);
  auto port_name = [&](uint16_t id) { return id < kMaxPorts ? names[id] : std::string(); };
  nlohmann::json flows = nlohmann::json::array();
  for (const auto& f : r.flows) flows.push_back(paged ? mon::flow_row_compact(f) : mon::flow_json(f, false, port_name));
  nlohmann::json out = {{"matched", r.matched}, {"connections", r.scanned}, {"flows", flows}};
  if (paged) {
    out["page"] = page;
    out["pages"] = (r.matched + kTelemetryPage - 1) / kTelemetryPage;
  } else {
    out["sort"] = sort.empty() || all_digits(sort) ? "bytes" : sort;
  }
  if (r.incomplete) out["incomplete"] = true;
  return out;
}

nlohmann::json Switch::tcp_flow(const nlohmann::json& args) {
  if (!dp_ || stage_index("monitor") < 0) throw std::runtime_error("the monitor stage is not available");
  const std::string id = args.contains("argv") && !args["argv"].empty() ? args["argv"][0].get<std::string>() : "";
  unsigned pmd = 0;
  uint32_t slot = 0;
  long long gen = -1;
  char extra = 0;
  const int n = std::sscanf(id.c_str(), "%u:%u:%lld%c", &pmd, &slot, &gen, &extra);
  if (n < 2 || n > 3) throw std::runtime_error("usage: tcp-flow PMD:SLOT[:GEN] (the id column of tcp-flows)");
  if (n == 2) gen = -1;
  std::vector<std::string> names(kMaxPorts);
  {
    std::lock_guard lk(mu_);
    for (uint16_t i = 0; i < kMaxPorts; ++i)
      if (owned_[i]) names[i] = owned_[i]->name();
  }
  auto f = mon::get_flow(*dp_, pmd, slot, gen);
  if (!f) throw std::runtime_error("no connection " + id);
  return mon::flow_json(*f, true, [&](uint16_t p) { return p < kMaxPorts ? names[p] : std::string(); });
}

}  // namespace vsw
