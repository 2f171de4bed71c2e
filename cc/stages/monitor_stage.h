// The monitor stage: passive per-connection TCP diagnosis (design.md table,
// shared/papers/tcp-monitor.txt). It never changes or drops a packet.
//
// Data path (monitor_stage.cc): the flow table's bulk lookup prefetches the
// state of every tracked packet (add_companion), then mon_packet()
// (monitor_state.h) per packet.
// Control path (monitor_ctl.cc): copies of the state taken on the PMD thread
// through Pmd::call, JSON for tcp-flows / tcp-flow / telemetry, and the
// writer of closed-connection records (JSON lines, [stages.monitor]
// export_path).
#pragma once
#include <atomic>
#include <boost/lockfree/spsc_queue.hpp>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cc/stages/monitor_state.h"
#include "pmd/stage.h"

namespace vsw {

struct Datapath;

namespace mon {

// Counters: enum id, name (vswitchctl stage-list), what it counts.
#define MONITOR_COUNTERS(X) \
  X(kCtrPackets, "packets") /* TCP packets inspected */ \
  X(kCtrUntracked, "untracked") /* TCP packets the flow table did not track (table full, stray RST/FIN) */ \
  X(kCtrConnections, "connections") /* connections whose state was (re)initialised */ \
  X(kCtrMidstream, "midstream") /* ... of which picked up mid-stream */ \
  X(kCtrRttSamples, "rtt_samples") /* Karn samples (data -> ACK) */ \
  X(kCtrTsSamples, "ts_samples") /* timestamp-echo samples (ACK -> sender's answer) */ \
  X(kCtrKarnSkipped, "karn_skipped") /* timed segment retransmitted: sample discarded */ \
  X(kCtrRetrans, "retrans") /* retransmitted segments */ \
  X(kCtrSpurious, "spurious_retrans") /* ... whose ACK had already passed toward the sender */ \
  X(kCtrDupacks, "dupacks") \
  X(kCtrFastRetx, "fast_retx") /* fast-retransmit episodes */ \
  X(kCtrTimeouts, "timeouts") /* RTO episodes */ \
  X(kCtrGaps, "gaps") /* sequence holes (loss / reordering before the switch) */ \
  X(kCtrHoleFills, "hole_fills") \
  X(kCtrGuestDelay, "guest_delay") /* gaps attributed to guest scheduling */ \
  X(kCtrGuestOff, "guest_off") /* data timed toward a guest that was not running / ring full */ \
  X(kCtrPhaseChanges, "phase_changes") \
  X(kCtrExported, "exported") /* closed-connection records queued for the export file */ \
  X(kCtrExportDropped, "export_dropped") /* ... lost because the writer fell behind */

enum Ctr : size_t { MONITOR_COUNTERS(VSW_COUNTER_ID) kCtrCount };
const std::vector<const char*>& monitor_counter_names();

// A consistent copy of one connection (taken on its PMD).
struct FlowSnap {
  unsigned pmd;
  uint32_t slot;
  uint32_t age_ms, idle_ms;
  uint32_t now_us;  // monitor clock when copied (open limit intervals end here)
  uint64_t mono_ns;  // CLOCK_MONOTONIC when copied: lines the copy up with readings taken elsewhere
                     // on the host (e.g. the endpoints' tcp_info, as the validation does)
  FlowKey key;  // full key (conn.key holds only IPv4 addresses)
  TcpConn conn;  // counters included (conn.stats)
  MonConn h;
  MonCold c;
  uint8_t reason;  // RemoveReason + 1 for closed-connection records, else 0
  uint64_t wall_ms;  // closed records: wall-clock time of removal
};

// Writes closed-connection records as JSON lines. push() runs on the PMD
// (lock-free, never blocks: a full queue drops and counts); a writer thread
// formats and appends every 100 ms. Records carry port ids, not names.
class Exporter {
 public:
  Exporter(std::string path, size_t capacity);
  ~Exporter();
  bool push(const FlowSnap& f) { return q_.push(f); }
  uint64_t written() const { return written_.load(); }
  uint64_t write_errors() const { return errors_.load(); }
  const std::string& path() const { return path_; }

 private:
  void run();
  std::string path_;
  boost::lockfree::spsc_queue<FlowSnap> q_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> written_{0}, errors_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread thr_;
};

struct Roles {
  std::vector<std::string> uplink, guest, host;  // port names; else by kind (vhost-user: guest, ethdev: uplink)
};

}  // namespace mon

class MonitorStage final : public Stage {
 public:
  explicit MonitorStage(const StageInit& init);
  ~MonitorStage() override;
  void process(Batch& b, PmdContext& ctx) override;
  nlohmann::json details() const override;

  // ---- PMD thread only (inside Pmd::call) ----
  bool ready() const { return st_ != nullptr; }
  uint32_t capacity() const { return cap_; }
  uint32_t now_us() const;
  // Copies slot of table t (must be live).
  void snap(const TcpFlowTable& t, uint32_t slot, uint32_t now_ms, mon::FlowSnap& out) const;
  const mon::MonConn& hot(uint32_t slot) const { return st_[slot].h; }
  const mon::MonCold& cold(uint32_t slot) const { return st_[slot].c; }
  const mon::MonParams& params() const { return params_; }

 private:
  struct Env;
  void init(PmdContext& ctx);
  static void on_remove(void* self, uint32_t slot, const TcpConn& c, RemoveReason why);

  mon::MonParams params_;
  mon::Roles roles_;
  unsigned pmd_;
  uint32_t cap_ = 0;
  mon::MonState* st_ = nullptr;  // capacity() slots, mapped at the first batch
  TcpFlowTable* table_ = nullptr;
  PmdContext* ctx_ = nullptr;
  uint64_t tsc_per_us_ = 1;
  // us = tsc * us_mult_ / 2^64, as the PMD's ms clock: not two 64-bit
  // divisions (tens of cycles each) per batch, which a closed loop's
  // one-packet batches pay per packet.
  uint64_t us_mult_ = 0;
  uint64_t stall_tsc_ = 0;
  // The inference's 32-bit microsecond clock (never 0) from a TSC value.
  uint32_t us_of(uint64_t tsc) const;
  std::unique_ptr<mon::Exporter> exporter_;
  std::string export_path_;
};

namespace mon {

// Control path (monitor_ctl.cc).
enum class SortBy { kBytes, kRtt, kRetrans, kAge };
struct FlowQuery {
  SortBy sort = SortBy::kBytes;
  size_t top = 20;
  size_t offset = 0;
  int port = -1;          // either endpoint seen on this switch port
  uint8_t family = 0;     // 0: no address filter
  uint8_t addr[16] = {};  // either endpoint has this address
};
struct FlowQueryResult {
  std::vector<FlowSnap> flows;  // sorted, [offset, offset + top)
  size_t matched = 0;
  size_t scanned = 0;
  bool incomplete = false;  // a PMD did not answer in time
};
// Copies matching connections out of every PMD's monitor (chunked Pmd::call).
FlowQueryResult query_flows(Datapath& dp, const FlowQuery& q);
std::optional<FlowSnap> get_flow(Datapath& dp, unsigned pmd, uint32_t slot, int64_t gen = -1);
// JSON of one connection. port_name: switch port id -> name ("" if unknown).
nlohmann::json flow_json(const FlowSnap& f, bool detail, const std::function<std::string(uint16_t)>& port_name);
nlohmann::json flow_row_compact(const FlowSnap& f);  // telemetry pages
// Index of the direction carrying more payload (0/1: sending key endpoint).
uint8_t main_dir(const FlowSnap& f);
uint32_t e2e_rtt_us(const FlowSnap& f, uint8_t dir);
bool parse_addr(const std::string& s, uint8_t& family, uint8_t addr[16]);
std::string addr_str(const FlowKey& k, uint8_t ep);

}  // namespace mon
}  // namespace vsw
