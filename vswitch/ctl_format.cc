#include "vswitch/ctl_format.h"

#include <fmt/format.h>

namespace vsw {

namespace {

uint64_t u(const nlohmann::json& j, const char* k) { return j.contains(k) && j[k].is_number() ? j[k].get<uint64_t>() : 0; }

std::string fmt_show(const nlohmann::json& r) {
  std::string o = fmt::format("vswitch: {} PMD(s), rxq assignment {}, idle sleep max {} us, flow handoff {}\n",
                              r["pmds"].size(), r["rxq_assign"].get<std::string>(), u(r, "idle_sleep_max_us"),
                              r["flow_handoff"].get<bool>() ? "on" : "off");
  o += fmt::format("FDB: {} / {} entries, aging {} s\n", u(r["fdb"], "entries"), u(r["fdb"], "max_entries"),
                   u(r["fdb"], "aging_s"));
  o += fmt::format("mbufs: {} / {} in use\n", u(r["mbufs"], "in_use"), u(r["mbufs"], "total"));
  o += fmt::format("{:<3} {:<14} {:<11} {:<6} {}\n", "id", "port", "type", "link", "details");
  for (const auto& p : r["ports"]) {
    std::string det;
    if (p["type"] == "vhost-user")
      det = fmt::format("{} {} queues={} features={}", p["mode"].get<std::string>(), p["socket"].get<std::string>(),
                        u(p, "queues_enabled"), p["negotiated_features"].get<std::string>());
    else
      det = fmt::format("{} driver={} rxq={} txq={}", p["devargs"].get<std::string>(),
                        p["driver"].get<std::string>(), u(p, "rxq"), u(p, "txq"));
    bool up = p.contains("connected") ? p["connected"].get<bool>() : p.value("link_up", false);
    o += fmt::format("{:<3} {:<14} {:<11} {:<6} {}\n", u(p, "id"), p["name"].get<std::string>(),
                     p["type"].get<std::string>(), up ? "up" : "down", det);
  }
  return o;
}

std::string fmt_port_stats(const nlohmann::json& r) {
  std::string o;
  for (const auto& p : r) {
    o += fmt::format("port {} (id {}, link {}):\n", p["name"].get<std::string>(), u(p, "id"),
                     p["link_up"].get<bool>() ? "up" : "down");
    o += fmt::format("  rx: {} pkts {} bytes  malformed={} bad_offload={} vlan_drop={}\n", u(p, "rx_packets"),
                     u(p, "rx_bytes"), u(p, "rx_malformed"), u(p, "rx_bad_offload"), u(p, "rx_vlan_drop"));
    o += fmt::format("  tx: {} pkts {} bytes  drops: ring_full={} link_down={} other={}  sw_csum={} sw_gso={}\n",
                     u(p, "tx_packets"), u(p, "tx_bytes"), u(p, "tx_drop_ring_full"), u(p, "tx_drop_link_down"),
                     u(p, "tx_drop_other"), u(p, "tx_sw_csum"), u(p, "tx_sw_gso"));
  }
  return o;
}

std::string fmt_pmd_stats(const nlohmann::json& r) {
  std::string o;
  for (const auto& p : r) {
    const double busy = p["busy_cycles"].get<double>(), idle = p["idle_cycles"].get<double>();
    const double tot = busy + idle > 0 ? busy + idle : 1;
    o += fmt::format("pmd thread {} (lcore {}):\n", u(p, "pmd"), u(p, "lcore"));
    o += fmt::format("  packets received: {}\n  packets sent: {}\n  flooded: {}\n", u(p, "rx_packets"),
                     u(p, "tx_packets"), u(p, "flood_packets"));
    o += fmt::format("  idle cycles: {:.0f} ({:.2f}%)\n  processing cycles: {:.0f} ({:.2f}%)\n", idle,
                     100 * idle / tot, busy, 100 * busy / tot);
    o += fmt::format("  avg cycles per packet: {:.1f}\n", p["cycles_per_packet"].get<double>());
    o += fmt::format("  sleeps: {} ({} us)\n", u(p, "sleeps"), u(p, "sleep_us"));
    o += fmt::format("  drops: same_port={} no_port={} malformed={} stage={} vlan={} no_mbuf={}\n",
                     u(p, "drop_same_port"), u(p, "drop_no_port"), u(p, "drop_malformed"), u(p, "drop_stage"),
                     u(p, "drop_vlan"), u(p, "drop_no_mbuf"));
    o += fmt::format("  flow handoff: out={} in={} ring_full={}\n", u(p, "handoff_out"), u(p, "handoff_in"),
                     u(p, "handoff_full"));
    o += fmt::format("  fdb: learned={} moved={} full={}\n", u(p, "fdb_learned"), u(p, "fdb_moved"),
                     u(p, "fdb_full"));
    if (!p["parse_errors"].empty()) o += "  parse errors: " + p["parse_errors"].dump() + "\n";
  }
  return o;
}

std::string fmt_rxq(const nlohmann::json& r) {
  std::string o;
  for (const auto& p : r) {
    o += fmt::format("pmd thread {} (lcore {}):\n", u(p, "pmd"), u(p, "lcore"));
    for (const auto& q : p["rxqs"])
      o += fmt::format("  port: {:<14} queue-id: {:>2} ({})  pmd usage: {:5.1f} %  packets: {}\n",
                       q["port"].get<std::string>(), u(q, "queue"), q["enabled"].get<bool>() ? "enabled" : "disabled",
                       q["usage_pct"].get<double>(), u(q, "packets"));
  }
  return o;
}

std::string fmt_fdb(const nlohmann::json& r) {
  std::string o = fmt::format("{:<14} {:>5}  {:<17}  {:>5}\n", "port", "VLAN", "MAC", "Age");
  for (const auto& e : r)
    o += fmt::format("{:<14} {:>5}  {:<17}  {:>5}\n", e["port"].get<std::string>(), u(e, "vlan"),
                     e["mac"].get<std::string>(), u(e, "age_s"));
  return o;
}

std::string fmt_stages(const nlohmann::json& r) {
  std::string o;
  for (const auto& s : r) {
    o += fmt::format("{:<10} {:<8} {}\n", s["name"].get<std::string>(), s["enabled"].get<bool>() ? "enabled" : "disabled",
                     s["help"].get<std::string>());
    for (auto it = s["counters"].begin(); it != s["counters"].end(); ++it)
      o += fmt::format("    {:<28} {}\n", it.key(), it.value().dump());
  }
  return o;
}

std::string fmt_help(const nlohmann::json& r) {
  std::string o;
  for (const auto& c : r)
    o += fmt::format("  {}\n      {}\n", c["usage"].get<std::string>(), c["help"].get<std::string>());
  return o;
}

// tcp-flows / tcp-flow (monitor stage): one line per direction that carried data.
std::string fmt_size(uint64_t b) {
  if (b >= 10'000'000'000ull) return fmt::format("{}G", b / 1'000'000'000);
  if (b >= 10'000'000) return fmt::format("{}M", b / 1'000'000);
  if (b >= 10'000) return fmt::format("{}K", b / 1'000);
  return fmt::format("{}", b);
}

std::string fmt_flow_dir(const std::string& id, const nlohmann::json& f, const nlohmann::json& d) {
  return fmt::format("{:<9} {:<44} {:<11} {:>6} {:>8} {:>6} {:>6} {:>6} {:>5}/{:<4} {:>3} {:<10} {:<16} {:>5.1f}\n", id,
                     d["src"].get<std::string>() + " > " + d["dst"].get<std::string>(), f["state"].get<std::string>(),
                     fmt_size(u(d, "bytes")), u(d, "rtt_us"), fmt_size(u(d, "flight")), fmt_size(u(d, "cwnd_lb")),
                     fmt_size(u(d, "rwnd")), u(d, "retrans"), u(d, "spurious_retrans"), u(d, "timeouts"),
                     d["phase"].get<std::string>().substr(0, 10), d["limited_by"].get<std::string>(),
                     100.0 * d.value("guest_share", 0.0));
}

std::string fmt_tcp_flows(const nlohmann::json& r) {
  if (r.contains("page")) return r.dump(2) + "\n";  // telemetry-style page: keep JSON
  std::string o = fmt::format("{} of {} connection(s) match, sorted by {}{}\n", u(r, "matched"), u(r, "connections"),
                              r.value("sort", "bytes"), r.value("incomplete", false) ? " (INCOMPLETE: a PMD did not answer)" : "");
  o += fmt::format("{:<9} {:<44} {:<11} {:>6} {:>8} {:>6} {:>6} {:>6} {:>10} {:>3} {:<10} {:<16} {:>5}\n", "ID",
                   "SRC > DST", "STATE", "BYTES", "RTT(us)", "FLIGHT", "CWND>=", "RWND", "RETX/SPUR", "RTO", "PHASE",
                   "LIMITED-BY", "GUEST%");
  for (const auto& f : r["flows"])
    for (const auto& d : f["dirs"]) o += fmt_flow_dir(f["id"].get<std::string>(), f, d);
  return o;
}

std::string fmt_tcp_flow(const nlohmann::json& f) {
  std::string o = fmt::format("connection {} (gen {}): {}{}, age {} ms, idle {} ms\n", f["id"].get<std::string>(),
                              u(f, "gen"), f["state"].get<std::string>(), f.value("midstream", false) ? " (mid-stream)" : "",
                              u(f, "age_ms"), u(f, "idle_ms"));
  for (size_t e = 0; e < f["endpoints"].size(); ++e) {
    const auto& ep = f["endpoints"][e];
    const auto& sd = f["sides"][e];
    o += fmt::format("  endpoint {}: {}:{} via {} ({}){}  side RTT srtt {} us var {} min {} max {} ({} samples)", e,
                     ep["addr"].get<std::string>(), u(ep, "port"), ep.value("switch_port", std::string("?")),
                     ep["role"].get<std::string>(), ep.value("initiator", false) ? " initiator" : "", u(sd, "srtt_us"),
                     u(sd, "rttvar_us"), u(sd, "min_us"), u(sd, "max_us"), u(sd, "samples"));
    if (sd.contains("guest_delay_avg_us"))
      o += fmt::format("  guest delay avg {} us max {} us", u(sd, "guest_delay_avg_us"), u(sd, "guest_delay_max_us"));
    o += "\n";
  }
  for (const auto& d : f["dirs"]) {
    o += fmt::format("  {} > {}: {} bytes {} segs\n", d["src"].get<std::string>(), d["dst"].get<std::string>(),
                     u(d, "bytes"), u(d, "segs"));
    o += fmt::format("    rtt {} us (receiver side {} + sender side {}), var {} us\n", u(d, "rtt_us"),
                     u(d, "rtt_receiver_side_us"), u(d, "rtt_sender_side_us"), u(d, "rttvar_us"));
    o += fmt::format("    flight {} cwnd>= {} (max {}) rwnd {} mss {} ssthresh~ {} delivery {} kbit/s\n", u(d, "flight"),
                     u(d, "cwnd_lb"), u(d, "max_flight"), u(d, "rwnd"), u(d, "mss"), u(d, "ssthresh_est"),
                     u(d, "delivery_kbps"));
    o += fmt::format("    retrans {} (spurious {}), fast-retransmit episodes {}, timeouts {}, dupacks {}, ece {}, "
                     "gaps {} (filled {}), karn-skipped {}\n",
                     u(d, "retrans"), u(d, "spurious_retrans"), u(d, "fast_retx"), u(d, "timeouts"), u(d, "dupacks"),
                     u(d, "ece"), u(d, "gaps"), u(d, "hole_fills"), u(d, "karn_skipped"));
    const auto& lm = d["limited_ms"];
    o += fmt::format("    phase {}, limited by {} (now {}): sender {} ms, receiver window {} ms, network {} ms, guest "
                     "scheduling {} ms\n",
                     d["phase"].get<std::string>(), d["limited_by"].get<std::string>(),
                     d["limited_now"].get<std::string>(), u(lm, "sender"), u(lm, "receiver_window"), u(lm, "network"),
                     u(lm, "guest_scheduling"));
    o += fmt::format("    guest delay {} us = {:.1f} % of the RTT; guest-scheduling time {:.1f} %; sent to a stalled "
                     "guest {}\n",
                     u(d, "guest_delay_us"), 100.0 * d.value("guest_share", 0.0), 100.0 * d.value("guest_time_share", 0.0),
                     u(d, "guest_off_at_send"));
  }
  return o;
}

}  // namespace

std::string format_result(const std::string& cmd, const nlohmann::json& r) {
  try {
    if (cmd == "show") return fmt_show(r);
    if (cmd == "port-stats") return fmt_port_stats(r);
    if (cmd == "pmd-stats-show") return fmt_pmd_stats(r);
    if (cmd == "pmd-rxq-show") return fmt_rxq(r);
    if (cmd == "fdb-show") return fmt_fdb(r);
    if (cmd == "stage-list") return fmt_stages(r);
    if (cmd == "help") return fmt_help(r);
    if (cmd == "tcp-flows") return fmt_tcp_flows(r);
    if (cmd == "tcp-flow") return fmt_tcp_flow(r);
  } catch (const std::exception&) {
    // fall through to JSON for anything unexpected
  }
  return r.dump(2) + "\n";
}

}  // namespace vsw
