// vmsim: one emulated guest VM for the test bed. A virtio-user frontend on the
// switch's vhost-user socket, bridged to a tap whose namespace's kernel is the
// guest's TCP stack; port service is gated by a vCPU consolidation schedule
// (schedule.h). Usage and model: README.md.
#include <rte_eal.h>
#include <rte_ethdev.h>

#include <CLI/CLI.hpp>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <memory>
#include <stdexcept>

#include "bench/testbed/bridge.h"
#include "bench/testbed/clock.h"
#include "bench/testbed/guest_offload.h"
#include "bench/testbed/schedule.h"

namespace tb {
namespace {

struct Options {
  std::string vhost, switch_tap, iface, mac, csv, freeze_cgroup, stall_csv;
  double stall_min_us = 1000;
  bool server = false, guest_offloads = false, schedule_only = false;
  unsigned queue_size = 256, vms_per_core = 1, burst = 32;
  double slice_ms = 30, load_pct = 60, duration_s = 0, idle_sleep_us = 30;
  uint64_t seed = 1;
};

// Gates the bridge with the model and records both the intended intervals
// and the applied ones. The loop checks the gate before every port service,
// so no service starts after the model's off transition: an applied off
// period starts when the last service before it ended (bounded by the model
// time), and ends when the loop actually woke up and saw "on" again, which is
// where the host's wake-up latency shows.
class ScheduleGate final : public Gate {
 public:
  ScheduleGate(ConsolidationModel m, uint64_t t0) : model_(std::move(m)), t0_(t0) { advance(0); }

  bool open(uint64_t now, uint64_t* next_change) override {
    const uint64_t us = static_cast<uint64_t>(tsc_to_us(now - t0_));
    const uint64_t model_change = cur_.end_us;
    advance(us);
    if (cur_.on != applied_on_) {
      // on -> off: the guest stopped at the later of its last check and the
      // model's transition (it was not serviced after either).
      const uint64_t at = applied_on_ ? std::max(last_on_check_us_, std::min(us, model_change)) : us;
      applied_.push_back(Interval{applied_on_, applied_start_, at});
      applied_on_ = cur_.on;
      applied_start_ = at;
    }
    if (cur_.on) last_on_check_us_ = us;
    *next_change = cur_.end_us >= UINT64_MAX / 4 ? kNever : t0_ + us_to_tsc(static_cast<double>(cur_.end_us));
    return cur_.on;
  }
  void finish(uint64_t now) {
    const uint64_t us = static_cast<uint64_t>(tsc_to_us(now - t0_));
    applied_.push_back(Interval{applied_on_, applied_start_, us});
    horizon_us_ = us;
  }
  const std::vector<Interval>& model_log() const { return model_log_; }
  const std::vector<Interval>& applied() const { return applied_; }
  uint64_t horizon_us() const { return horizon_us_; }

 private:
  void advance(uint64_t us) {
    while (model_log_.empty() || us >= cur_.end_us) {
      cur_ = model_.next();
      model_log_.push_back(cur_);
    }
  }
  ConsolidationModel model_;
  uint64_t t0_;
  Interval cur_{};
  std::vector<Interval> model_log_, applied_;
  bool applied_on_ = true;
  uint64_t applied_start_ = 0, horizon_us_ = 0, last_on_check_us_ = 0;
};

class GuestRxStage final : public FifoStage {
 public:
  explicit GuestRxStage(GuestOffload* off) : off_(off) {}
  unsigned transform(rte_mbuf* m, rte_mbuf** out, unsigned max_out) override {
    if (!off_) return FifoStage::transform(m, out, max_out);
    return off_->complete(m, out, max_out);
  }

 private:
  GuestOffload* off_;
};

void print_stats(const char* what, const ScheduleStats& s) {
  std::printf("vmsim schedule %s: total_ms=%.1f on_ms=%.1f on_fraction=%.4f off_count=%u off_median_ms=%.2f "
              "off_mean_ms=%.2f off_max_ms=%.2f\n",
              what, s.total_ms, s.on_ms, s.on_fraction, s.off_count, s.off_median_ms, s.off_mean_ms, s.off_max_ms);
}

void write_csv(const std::string& path, const std::vector<Interval>& model, const std::vector<Interval>* applied,
               uint64_t horizon) {
  std::ofstream f(path);
  f << "source,state,start_us,end_us\n";
  for (const auto& i : model) {
    if (i.start_us >= horizon) break;
    f << "model," << (i.on ? "on" : "off") << ',' << i.start_us << ',' << std::min(i.end_us, horizon) << '\n';
  }
  if (applied)
    for (const auto& i : *applied)
      f << "applied," << (i.on ? "on" : "off") << ',' << i.start_us << ',' << i.end_us << '\n';
}

void print_header(const Options& o, const ConsolidationModel& m) {
  std::printf("vmsim model: vms_per_core=%u slice_ms=%.3f load=%.3f seed=%llu expected_on_fraction=%.4f\n",
              o.vms_per_core, o.slice_ms, o.load_pct / 100, static_cast<unsigned long long>(o.seed),
              m.expected_on_fraction());
}

// --schedule-only: the model's schedule for --duration seconds, no DPDK.
int schedule_only(const Options& o) {
  ConsolidationModel m(o.vms_per_core, o.slice_ms, o.load_pct / 100, o.seed);
  print_header(o, m);
  const auto horizon = static_cast<uint64_t>(o.duration_s * 1e6);
  std::vector<Interval> iv;
  while (iv.empty() || iv.back().end_us < horizon) iv.push_back(m.next());
  print_stats("model", summarize(iv, horizon));
  if (!o.csv.empty()) write_csv(o.csv, iv, nullptr, horizon);
  return 0;
}

// --freeze-cgroup DIR: applies the model's schedule to a real guest (a UML or
// QEMU process tree) through the cgroup v1 freezer, no DPDK: FROZEN for off
// periods, THAWED for on periods. A frozen guest runs nothing at all (its
// timers stop too), which is what a descheduled VM does. The applied off
// period starts when the kernel reports FROZEN and ends when THAWED was
// written; both are recorded like the gate's applied intervals.
class Freezer {
 public:
  explicit Freezer(const std::string& dir) : path_(dir + "/freezer.state") {
    if (!write("THAWED")) throw std::invalid_argument("cannot write " + path_ + " (cgroup v1 freezer?)");
  }
  ~Freezer() { write("THAWED"); }
  bool write(const char* state) {
    std::FILE* f = std::fopen(path_.c_str(), "r+");  // never creates: must be a freezer cgroup
    if (!f) return false;
    const bool ok = std::fputs(state, f) >= 0;
    return std::fclose(f) == 0 && ok;
  }
  bool frozen() {
    char buf[32] = {};
    std::FILE* f = std::fopen(path_.c_str(), "r");
    if (!f) return false;
    const bool ok = std::fgets(buf, sizeof(buf), f) != nullptr;
    std::fclose(f);
    return ok && std::strncmp(buf, "FROZEN", 6) == 0;
  }

 private:
  std::string path_;
};

uint64_t mono_us() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

void sleep_until_mono_us(uint64_t t) {
  timespec ts{static_cast<time_t>(t / 1000000), static_cast<long>((t % 1000000) * 1000)};
  clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);  // EINTR: the caller re-checks stop
}

int freeze_cgroup(const Options& o) {
  ConsolidationModel m(o.vms_per_core, o.slice_ms, o.load_pct / 100, o.seed);
  print_header(o, m);
  std::fflush(stdout);
  Freezer fz(o.freeze_cgroup);
  auto& stop = stop_flag_on_signals();
  const uint64_t t0 = mono_us();
  const uint64_t horizon = o.duration_s > 0 ? static_cast<uint64_t>(o.duration_s * 1e6) : UINT64_MAX / 2;
  std::vector<Interval> model, applied;
  uint64_t applied_start = 0, freeze_lat_sum = 0, freeze_lat_max = 0, freezes = 0, slow_freezes = 0;
  bool applied_on = true;
  uint64_t now = 0;
  while (!stop.load() && now < horizon) {
    Interval iv = m.next();
    model.push_back(iv);
    if (iv.on != applied_on) {
      uint64_t at = mono_us() - t0;
      if (!iv.on) {
        fz.write("FROZEN");
        // Freezing is asynchronous: the guest still runs until every task is
        // frozen. Wait (bounded) for the kernel to say so.
        const uint64_t asked = mono_us();
        while (!fz.frozen() && mono_us() - asked < 20000) usleep(50);
        const uint64_t lat = mono_us() - asked;
        freeze_lat_sum += lat;
        freeze_lat_max = std::max(freeze_lat_max, lat);
        ++freezes;
        slow_freezes += lat >= 20000;
        at = mono_us() - t0;
      } else {
        fz.write("THAWED");
      }
      applied.push_back(Interval{applied_on, applied_start, at});
      applied_on = iv.on;
      applied_start = at;
    }
    sleep_until_mono_us(t0 + std::min(iv.end_us, horizon));
    now = mono_us() - t0;
  }
  fz.write("THAWED");
  applied.push_back(Interval{applied_on, applied_start, now});
  print_stats("model", summarize(model, now));
  print_stats("applied", summarize(applied, now));
  std::printf("vmsim freezer: freezes=%llu freeze_latency_mean_us=%.0f max_us=%llu slow(>=20ms)=%llu\n",
              static_cast<unsigned long long>(freezes), freezes ? double(freeze_lat_sum) / freezes : 0.0,
              static_cast<unsigned long long>(freeze_lat_max), static_cast<unsigned long long>(slow_freezes));
  std::fflush(stdout);
  if (!o.csv.empty()) write_csv(o.csv, model, &applied, now);
  return 0;
}

void print_port(const char* name, uint16_t port) {
  rte_eth_stats s{};
  rte_eth_stats_get(port, &s);
  std::printf("vmsim port %s: ipackets=%llu opackets=%llu imissed=%llu ierrors=%llu oerrors=%llu\n", name,
              static_cast<unsigned long long>(s.ipackets), static_cast<unsigned long long>(s.opackets),
              static_cast<unsigned long long>(s.imissed), static_cast<unsigned long long>(s.ierrors),
              static_cast<unsigned long long>(s.oerrors));
}

int run(const std::string& prog, const std::vector<std::string>& eal, const Options& o) {
  // The switch side is a virtio-user port, or (--switch-tap) a second tap:
  // then no vhost backend is needed, e.g. to test the schedule alone.
  std::string vu = "net_virtio_user0,path=" + o.vhost + ",queues=1,queue_size=" + std::to_string(o.queue_size);
  if (o.server) vu += ",server=1";
  const bool virtio_side = o.switch_tap.empty();
  if (!virtio_side) vu = "net_tap1,iface=" + o.switch_tap;
  std::string tap = "net_tap0,iface=" + o.iface;
  if (!o.mac.empty()) tap += ",mac=" + o.mac;
  eal_init(prog, eal, {vu, tap});
  auto& stop = stop_flag_on_signals();

  rte_mempool* pool = make_pool("tb_vmsim", 8191);
  rte_mempool* indirect = nullptr;
  std::unique_ptr<GuestOffload> off;
  PortSetup virtio{virtio_side ? "net_virtio_user0" : "net_tap1", static_cast<uint16_t>(o.queue_size), 0, 0};
  if (o.guest_offloads && virtio_side) {
    // Requesting these rx offloads makes virtio-user negotiate GUEST_CSUM and
    // GUEST_TSO4/6, as QEMU's virtio-net does; without them it offers neither
    // and the switch must hand over complete packets.
    virtio.rx_offloads = RTE_ETH_RX_OFFLOAD_TCP_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM | RTE_ETH_RX_OFFLOAD_TCP_LRO;
    indirect = rte_pktmbuf_pool_create("tb_vmsim_ind", 8191, 256, 0, 0, rte_socket_id());
    if (!indirect) throw std::runtime_error("indirect pool");
    off = std::make_unique<GuestOffload>(pool, indirect);
  }
  const uint16_t p_virtio = open_port(virtio, pool);
  const uint16_t p_tap = open_port(PortSetup{"net_tap0", 1024, 0, 0}, pool);

  ConsolidationModel model(o.vms_per_core, o.slice_ms, o.load_pct / 100, o.seed);
  print_header(o, model);
  std::fflush(stdout);
  {  // stages and bridge hold mbufs: release them before the ports and the EAL go
  const uint64_t t0 = now_tsc();
  ScheduleGate gate(model, t0);
  GuestRxStage to_guest(off.get());  // virtio (switch) -> tap (guest stack)
  FifoStage from_guest;              // tap -> virtio
  BridgeConfig bc;
  bc.port[0] = p_virtio;
  bc.port[1] = p_tap;
  bc.burst = o.burst;
  bc.idle_sleep_us = o.idle_sleep_us;
  Bridge br(bc, &to_guest, &from_guest, &gate);
  br.record_stalls(o.stall_min_us);
  const uint64_t deadline = o.duration_s > 0 ? t0 + us_to_tsc(o.duration_s * 1e6) : kNever;
  br.run(stop, deadline);
  gate.finish(now_tsc());

  print_stats("model", summarize(gate.model_log(), gate.horizon_us()));
  print_stats("applied", summarize(gate.applied(), gate.horizon_us()));
  const auto& a = br.counters(0);
  const auto& b = br.counters(1);
  std::printf("vmsim counters: switch_to_guest_rx=%llu switch_to_guest_tx=%llu guest_to_switch_rx=%llu "
              "guest_to_switch_tx=%llu drop_to_guest_fifo=%llu drop_to_switch_fifo=%llu loops=%llu sleeps=%llu\n",
              (unsigned long long)a.rx, (unsigned long long)a.tx, (unsigned long long)b.rx,
              (unsigned long long)b.tx, (unsigned long long)to_guest.dropped(),
              (unsigned long long)from_guest.dropped(), (unsigned long long)br.loops(),
              (unsigned long long)br.sleeps());
  if (off) {
    const auto& c = off->counters();
    std::printf("vmsim offload: csum_completed=%llu segmented=%llu segments=%llu drop_bad=%llu drop_nogso=%llu\n",
                (unsigned long long)c.csum_completed, (unsigned long long)c.segmented,
                (unsigned long long)c.segments, (unsigned long long)c.drop_bad, (unsigned long long)c.drop_nogso);
  }
  {  // the host's descheduling of this process on top of the schedule (Bridge::stalls)
    uint64_t tot = 0, ge2 = 0, mx = 0;
    for (const auto& st : br.stalls()) {
      tot += st.dur_us;
      ge2 += st.dur_us >= 2000 ? st.dur_us : 0;
      mx = std::max<uint64_t>(mx, st.dur_us);
    }
    std::printf("vmsim host stalls (>= %.0f us late): n=%zu total_ms=%.1f ge2ms_ms=%.1f max_ms=%.1f\n", o.stall_min_us,
                br.stalls().size(), tot / 1e3, ge2 / 1e3, mx / 1e3);
    if (!o.stall_csv.empty()) {
      if (std::FILE* f = std::fopen(o.stall_csv.c_str(), "w")) {
        std::fprintf(f, "end_mono_us,dur_us\n");
        for (const auto& st : br.stalls())
          std::fprintf(f, "%llu,%llu\n", (unsigned long long)st.end_mono_us, (unsigned long long)st.dur_us);
        std::fclose(f);
      }
    }
  }
  print_port("virtio", p_virtio);
  print_port("tap", p_tap);
  std::fflush(stdout);
  if (!o.csv.empty()) write_csv(o.csv, gate.model_log(), &gate.applied(), gate.horizon_us());
  }

  rte_eth_dev_stop(p_virtio);
  rte_eth_dev_stop(p_tap);
  rte_eth_dev_close(p_virtio);
  rte_eth_dev_close(p_tap);
  rte_eal_cleanup();
  return 0;
}

}  // namespace
}  // namespace tb

int main(int argc, char** argv) {
  std::vector<std::string> eal, tool;
  tb::split_args(argc, argv, eal, tool);
  tb::Options o;
  CLI::App app{"vmsim: an emulated guest VM (virtio-user <-> tap) with vCPU consolidation.\n"
               "usage: vmsim [EAL options] -- [vmsim options]"};
  app.add_option("--vhost", o.vhost, "vhost-user socket path of the switch port");
  app.add_option("--switch-tap", o.switch_tap, "instead of --vhost: a tap of this name is the switch side");
  app.add_flag("--server", o.server, "virtio-user is the socket server (switch in client mode)");
  app.add_option("--queue-size", o.queue_size, "virtio ring size")->check(CLI::Range(64u, 4096u));
  app.add_option("--iface", o.iface, "tap interface name (created in the current netns)");
  app.add_option("--mac", o.mac, "MAC address of the tap interface (the guest's MAC)");
  app.add_flag("--guest-offloads", o.guest_offloads,
               "negotiate GUEST_CSUM/GUEST_TSO like QEMU and complete packets in software");
  app.add_option("--vms-per-core", o.vms_per_core, "VMs sharing the guest's core, guest included")
      ->check(CLI::Range(1u, 5u));
  app.add_option("--slice-ms", o.slice_ms, "scheduler time slice (Xen credit: 30)")->check(CLI::PositiveNumber);
  app.add_option("--load", o.load_pct, "CPU load of the co-located VMs, percent")->check(CLI::Range(0.0, 100.0));
  app.add_option("--seed", o.seed, "seed of the schedule");
  app.add_option("--duration", o.duration_s, "stop after this many seconds (0: until SIGINT/SIGTERM)");
  app.add_option("--csv", o.csv, "write the schedule (model and applied intervals) to this CSV at exit");
  app.add_option("--stall-csv", o.stall_csv,
                 "write the host stalls (loop back later than due by >= --stall-min-us: kept off its core) to this CSV "
                 "at exit, CLOCK_MONOTONIC");
  app.add_option("--stall-min-us", o.stall_min_us, "smallest host stall recorded (default 1000)");
  app.add_option("--idle-sleep-us", o.idle_sleep_us, "sleep after a poll that found nothing")
      ->check(CLI::Range(1.0, 10000.0));
  app.add_option("--burst", o.burst, "rx/tx burst size")->check(CLI::Range(1u, 256u));
  app.add_flag("--schedule-only", o.schedule_only, "print the model's schedule for --duration s; no DPDK");
  app.add_option("--freeze-cgroup", o.freeze_cgroup,
                 "apply the schedule to a real guest: freeze/thaw this cgroup v1 freezer directory; no DPDK");
  std::vector<std::string> rev(tool.rbegin(), tool.rend());
  try {
    app.parse(rev);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (o.schedule_only) {
      if (o.duration_s <= 0) throw std::invalid_argument("--schedule-only needs --duration");
      return tb::schedule_only(o);
    }
    if (!o.freeze_cgroup.empty()) return tb::freeze_cgroup(o);
    if (o.vhost.empty() == o.switch_tap.empty() || o.iface.empty())
      throw std::invalid_argument("--iface and one of --vhost, --switch-tap are required");
    return tb::run(argv[0], eal, o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vmsim: %s\n", e.what());
    return 1;
  }
}
