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

// Counter order of the registry row (pmd/stage_registry.cc).
enum Ctr : size_t {
  kCtrPackets,       // TCP packets inspected
  kCtrUntracked,     // TCP packets the flow table did not track (table full, stray RST/FIN)
  kCtrConnections,   // connections whose state was (re)initialised
  kCtrMidstream,     // ... of which picked up mid-stream
  kCtrRttSamples,    // Karn samples (data -> ACK)
  kCtrTsSamples,     // timestamp-echo samples (ACK -> sender's answer)
  kCtrKarnSkipped,   // timed segment retransmitted: sample discarded
  kCtrRetrans,       // retransmitted segments
  kCtrSpurious,      // ... whose ACK had already passed toward the sender
  kCtrDupacks,
  kCtrFastRetx,      // fast-retransmit episodes
  kCtrTimeouts,      // RTO episodes
  kCtrGaps,          // sequence holes (loss / reordering before the switch)
  kCtrHoleFills,
  kCtrGuestDelay,    // gaps attributed to guest scheduling
  kCtrGuestOff,      // data timed toward a guest that was not running / ring full
  kCtrPhaseChanges,
  kCtrExported,      // closed-connection records queued for the export file
  kCtrExportDropped, // ... lost because the writer fell behind
  kCtrCount
};

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
