// The monitor stage's per-connection state and its per-packet inference
// (shared/papers/tcp-monitor.txt; the guest-delay signal from pvtcp.txt).
//
// State lives in one array of TcpFlowTable::capacity() MonState slots (512 B),
// indexed by the flow table's slot and reset on kEvCreated:
//  - MonConn (hot, 128 B = two cache lines): one MonDir per data direction,
//    indexed by the SENDING key endpoint, touched by every packet;
//  - MonCold (384 B): three warm lines (per direction: time-in-state totals,
//    timed-segment queue, window roll; both sides' RTT estimators), touched
//    on RTT samples, window ends and limit-state changes, then the cold
//    counters of loss events. The stage prefetches the hot and warm lines of
//    a batch ahead of processing it (monitor_stage.cc).
//
// Vocabulary. For a data direction S->R (S = sender endpoint, R = receiver):
//  - side RTT of an endpoint e: switch -> e -> switch. Karn samples of S's
//    data (segment passes the switch, R's ACK for it passes back) are side
//    samples of R; timestamp-echo samples (R's ACK with TSval w passes toward
//    S, S's next packet echoes w) are side samples of S. The end-to-end RTT
//    S sees is side[R] + side[S]; which side is the guest, the local host or
//    the uplink follows from the ports the endpoints were seen on.
//  - guest delay: a side sample of a guest endpoint minus that side's minimum
//    (the time data / ACKs for the guest waited for the guest to run).
//  - flight = nxt - una at the switch; its maximum over one RTT is a lower
//    bound of the sender's cwnd.
//  - limited-by: time is attributed, event to event, to one of sender
//    (application), receiver window, network (cwnd: loss / ECN / capacity)
//    or guest scheduling; see mon_limit_state() and the guest override.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "cc/tcp_segment.h"
#include "cc/tcp_seq.h"
#include "flowtable/tcp_flow_state.h"

namespace vsw::mon {

enum Phase : uint8_t { kPhaseUnknown = 0, kSlowStart, kCongAvoid, kRecovery, kLoss, kPhaseCount };
enum Limit : uint8_t { kLimSender = 0, kLimRwnd, kLimNetwork, kLimGuest, kLimCount };
enum Role : uint8_t { kRoleUnknown = 0, kRoleHost, kRoleGuest, kRoleUplink };
const char* phase_name(uint8_t p);
const char* limit_name(uint8_t l);
const char* role_name(uint8_t r);

namespace dflag {
inline constexpr uint8_t kSeq = 1u << 0;        // nxt valid
inline constexpr uint8_t kAck = 1u << 1;        // una valid
inline constexpr uint8_t kLastAck = 1u << 2;    // the last event was an ACK that advanced una
inline constexpr uint8_t kHole = 1u << 3;       // a sequence hole is open (MonDirCold::hole_*)
inline constexpr uint8_t kRttGuestOff = 1u << 4;// the timed segment went to a guest that was not running
inline constexpr uint8_t kSndGuest = 1u << 5;   // the sender endpoint is behind a guest port
inline constexpr uint8_t kRcvGuest = 1u << 6;   // the receiver endpoint is behind a guest port
inline constexpr uint8_t kSeen = 1u << 7;       // this endpoint has sent something
}  // namespace dflag

namespace gflag {
// A guest initiator's SYN may have waited for the guest before it reached the
// switch (vmsim holds what the stack sends while the guest is off): its
// packets up to the first ACK of its data compare their TSval with the SYN's.
inline constexpr uint8_t kSynTrack = 1u << 0;
inline constexpr uint8_t kSynCounted = 1u << 1;  // some of that wait was counted already
// The sender has sent its FIN: nothing more to send, so its later silence
// (waiting for the guest to acknowledge the peer's FIN) is not its limit.
inline constexpr uint8_t kFinSent = 1u << 2;
// New data started from idle (nothing outstanding, the sender silent beyond
// thr_up): an application's write. Until an ACK comes back, the spacing of
// that burst's segments says nothing about ACK clocking (an app-limited
// sender writing 8 KB every few RTTs sends 6 segments back to back and then
// waits: counted as prompt, its in-flight time read as network-limited).
inline constexpr uint8_t kIdleBurst = 1u << 3;
// Retransmitted data of this direction is outstanding (MonDirCold::rtx_lo /
// rtx_hi): a cumulative ACK that also acknowledges it gives no RTT sample
// (Karn; Linux: FLAG_RETRANS_DATA_ACKED), whatever timed segment it covers.
inline constexpr uint8_t kRtxOut = 1u << 4;
}  // namespace gflag

namespace xflag {
// The current receiver-window interval began when a data packet filled the
// window: a paced sender (Linux: bbr, fq) counts the time until its next
// pacing slot as busy (network), not rwnd-limited; the first pace4*4 us of
// the interval go to network.
inline constexpr uint8_t kPaceHold = 1u << 0;
// An ACK opened room in the window after a receiver-window interval: the
// sender stays window-limited until it has processed that ACK and sent
// (Linux changes its chrono only when it next tries to send), so the interval
// continues until the sender's next data, for at most one window (win_len)
// after the ACK (d.lim_since is the ACK's time).
inline constexpr uint8_t kRoomOpen = 1u << 1;
}  // namespace xflag

// Timed segments per direction: the head in MonDir (rtt_end / rtt_t), up to
// kRttQueue more in MonDirWarm, spaced by a sixth of the flight, so that
// several samples per RTT come from different places of a burst (a single
// timed segment is mostly the first of a burst: the least queued), and the
// sample follows the queue as closely as the sender's per-ACK samples do
// (with a quarter, short transfers' RTT read 5-15 % low in slow start: the
// last sample was up to a quarter window behind the newest ACK).
inline constexpr uint32_t kRttQueue = 8;
inline constexpr uint32_t kRttSpacing = 6;  // a timed segment per 1/kRttSpacing of the flight
// The queue is packed: each entry's end and time as deltas from the one
// before it (the head for the first), in these units, rounded down from the
// previous one's reconstructed value (no error adds up: an end is at most 15
// bytes early, a time at most 3 us early). Segments shorter than an end unit
// are not queued (their rounded end could fall at or before their start,
// where an ACK of the segment before would take their sample). A segment
// further than 1 MB or 262 ms from the one before is not queued; the
// spacing is capped at kRqMaxSpace so that large flights still queue.
// An entry that cannot be removed (merging its deltas into the next one
// would overflow) is marked dead (MonDirWarm::rq_dead) and skipped.
inline constexpr uint32_t kRqEndUnit = 16, kRqTimeUnit = 4;
inline constexpr uint32_t kRqMaxSpace = 0xffff * kRqEndUnit / 4;  // three adjacent entries still merge
// Hot state of one data direction (sender = the key endpoint it is indexed by).
// Times are a 32-bit microsecond clock; 0 means "none".
struct alignas(64) MonDir {
  uint32_t una;        // highest ACK from the receiver seen at the switch
  uint32_t nxt;        // highest sequence end from the sender
  uint32_t rtt_end;    // Karn: end of the oldest timed segment (more queued in MonDirWarm::rq_*)
  uint32_t rtt_t;      // when it passed (0: nothing timed)
  uint32_t ts_w;       // receiver's TSval awaiting the sender's echo
  uint32_t ts_t;       // when it passed toward the sender (0: none pending)
  uint32_t last_evt;   // last data from the sender or ACK from the receiver
  uint32_t last_ack;   // where a guest's silence starts (mon_guest_silence): for a guest receiver the
                       // later of its last ACK and the data that ended an idle (nothing outstanding)
                       // period; else the first ACK that advanced una after the sender's last data
  uint32_t fl_max;     // largest flight in the current window
  uint32_t fl_prev;    // largest flight in the previous window
  uint32_t win_t;      // start of the current window (one RTT long)
  uint32_t lim_since;  // start of the current limit state
  uint32_t win_len;    // window length, us (smoothed end-to-end RTT, >= 200)
  uint16_t thr_up;     // us: the sender answers an ACK within this when backlogged
  uint16_t rto_ms;     // silence before a head retransmission counts as a timeout
  uint8_t clocked;     // EWMA (of 255): new data came promptly (sender backlogged)
  uint8_t dupacks;     // duplicate ACKs since una last advanced
  uint8_t phase;       // Phase
  uint8_t lim;         // Limit (current)
  uint8_t flags;       // dflag
  uint8_t acks;        // ACKs (una advanced, or dupACKs with SACK blocks) since the last RTT sample (saturates)
  uint8_t pace4;       // EWMA of the sender's gap between two data packets with no ACK between, 4 us units
  uint8_t xflags;      // xflag: how the open limit interval splits (see mon_lim_split)
};
static_assert(sizeof(MonDir) == 64);

struct MonConn {
  MonDir d[2];
};
static_assert(sizeof(MonConn) == 128);

// Smoothed RTT of one side (RFC 6298 gains) and its guest-delay excess.
struct MonSide {
  uint32_t srtt, var, min, max;  // us
  // Guest endpoints only: a sample's excess over the side's minimum (the
  // time data / ACKs waited for the guest), averaged over time, not over
  // samples: each sample weighs the time it covers, since the side's
  // previous one and at most its own duration (mon_gex_update). A guest that
  // runs answers often, and each answer is a small sample; after an off
  // period one ACK answers for the whole wait. The average is an EWMA started
  // from zero (time constant kGexTauUs) and divided by the weight it has
  // gathered (from gex_l), so that a short flow's first samples do not stand
  // for a whole time constant: mon_gex_avg(). The largest excess is max - min.
  float gex_acc;       // us, the EWMA before that division (a float: its weight may still be small)
  uint16_t n;          // samples (saturating at 65535)
  uint16_t gex_l;      // time the samples covered, 64 us ticks (kGexTickShift; saturating: ~4.2 s, 16 tau)
  uint32_t gex_t;      // when the side's last sample was taken (us)
  uint32_t wmin;       // timestamp-echo samples: minimum of the current group
};                     // (its size: MonDirWarm::ts_wn of the endpoint's direction)
static_assert(sizeof(MonSide) == 32);
inline constexpr uint32_t kGexTauUs = 1u << 18;  // ~0.26 s: several on/off periods of a consolidated guest
inline constexpr uint32_t kGexTickShift = 6;     // covered time counted in 64 us ticks

// Timestamp-echo samples of a sender's side also contain its response time
// (waiting for cwnd room, TCP small queues, the application): only the
// minimum of each group of this many enters the estimator.
inline constexpr uint32_t kTsGroup = 4;

// Per direction, warm: what a packet may touch outside loss events (limit-state
// times, the timed-segment queue, the window roll), one cache line.
struct alignas(64) MonDirWarm {
  uint32_t lim_us[kLimCount];  // time per limit state (closed intervals), us (beyond 2^31: MonDirCold::lim_carry)
  uint16_t rq_dend[kRttQueue], rq_dt[kRttQueue];  // timed segments behind the head, oldest first (packed)
  uint32_t una_win;       // una at the start of the current window
  uint32_t rate_kbps;     // acked bytes over the last window
  uint32_t max_flight;
  uint8_t rq_n;           // how many timed segments are queued (dead ones included)
  uint8_t ts_wn;          // timestamp-echo samples of the sender's side in the current group (MonSide::wmin)
  uint8_t gflags;         // gflag:: bits (guest sender: its SYN's wait before the switch; FIN sent; idle burst;
                          // retransmitted data outstanding)
  uint8_t rq_dead;        // bit i: queued entry i is dead (kept for the positions of those after it)
};
static_assert(sizeof(MonDirWarm) == 64);

// Per direction, cold: counters and state of loss events.
struct MonDirCold {
  uint32_t retrans;       // retransmitted segments (sequence space seen before)
  uint32_t spurious;      // ... whose ACK had already passed toward the sender
  uint32_t dupacks;
  uint32_t karn_skipped;  // timed segments discarded (resent, or covered by an ACK that also covers resent data)
  uint16_t fast_retx;     // fast-retransmit / recovery episodes
  uint16_t timeouts;      // RTO episodes
  uint16_t ece;           // ACKs with ECE (receiver saw CE marks)
  uint16_t gaps;          // holes opened (data lost or reordered before the switch)
  uint16_t fills;         // segments filling such a hole (first seen here)
  uint16_t guest_off;     // timed segments sent to a guest that was not running / ring full
  uint32_t recover;       // nxt at entry to recovery / loss
  uint32_t ssthresh;      // flight / 2 at the last loss (0: none yet)
  uint32_t hole_lo, hole_hi;
  uint32_t sil_from;  // a guest sender's silence the times in MonCold::sil_8us belong to (its last_ack)
  // Retransmitted sequence space not yet acknowledged (gflag::kRtxOut): from
  // the lowest start to the highest end of the retransmissions since una last
  // passed all of them. One span: an ACK that covers only originals between
  // two resent ranges gives no sample either (Linux would take it; rare, and
  // SACK samples cover that time).
  uint32_t rtx_lo, rtx_hi;
  // The last retransmission: its TSval, end, and when it passed (rtx_t 0:
  // none or sampled). The ACK that ends the repair echoes it (the receiver
  // takes TS.Recent from a segment that fills a hole).
  uint32_t rtx_tsval, rtx_end, rtx_t;
  uint16_t lim_carry[kLimCount];  // limit-state totals carried out of MonDirWarm::lim_us, in kLimCarryUs
};

// Layout (384 bytes, 64-aligned): the first three lines are what a packet
// may touch without a loss event (both directions' warm lines, both sides'
// estimators); they follow the hot lines in MonState and are prefetched with
// them
// (TcpFlowTable::add_companion). Loss-event state follows.
struct alignas(64) MonCold {
  MonDirWarm w[2];       // by sending endpoint
  MonSide side[2];       // by key endpoint
  uint16_t port[2];      // switch port each endpoint was seen on
  uint8_t role[2];       // Role
  uint8_t midstream;
  uint8_t pad[1];
  // A guest sender's silence (MonDir::last_ack, kLastAck): time closed into
  // sender / rwnd / network by the ACKs it left unanswered, since
  // MonDirCold::sil_from. Moved to guest scheduling if the silence turns out
  // to be the guest's (mon_guest_sender_silence). 8 us units, saturating (~0.5 s).
  uint16_t sil_8us[2][kLimGuest];  // by sending endpoint
  MonDirCold d[2];       // by sending endpoint
  // The SYN of a guest initiator (gflag::kSynTrack): when it passed and its TSval.
  uint32_t syn_t, syn_ts;
};
static_assert(sizeof(MonCold) == 384);
// Lines of MonCold a packet may touch outside loss events.
inline constexpr uint32_t kMonColdWarmLines = (offsetof(MonCold, port) + 63) / 64;
static_assert(kMonColdWarmLines == 3);

// One connection's state: hot and warm lines first (what a packet touches
// outside loss events: MonConn, then MonCold's warm lines), contiguous, so a
// packet needs one page translation and five adjacent lines (512 bytes: a
// slot never straddles a page).
struct alignas(64) MonState {
  MonConn h;
  MonCold c;
};
static_assert(sizeof(MonState) == 512);
inline constexpr uint32_t kMonWarmLines = sizeof(MonConn) / 64 + kMonColdWarmLines;

// Prefetches (for writing) what a packet of this connection touches outside
// loss events. The stage has the flow table do it during its bulk lookup
// (TcpFlowTable::add_companion with the same lines), well ahead of use.
inline void mon_prefetch(const MonState* st) {
  const char* p = reinterpret_cast<const char*>(st);
  for (uint32_t l = 0; l < kMonWarmLines; ++l) __builtin_prefetch(p + 64 * l, 1);
}

// Tunables ([stages.monitor]).
struct MonParams {
  uint32_t guest_stall_us = 2000;  // gap beyond the guest's usual answer time that counts as guest delay
  uint32_t rto_min_ms = 200;       // the senders' RTO floor (Linux default)
  uint32_t dupthresh = 3;
  // Also time a receiver's side from its timestamp echoes (several samples
  // per RTT, ms-granular TSvals, echo rules of delayed ACKs); off: Karn only.
  bool ts_receiver_samples = false;
};

// Per-packet results the stage turns into counters.
struct MonOut {
  uint8_t rtt_sample : 1, ts_sample : 1, retrans : 1, spurious : 1, dupack : 1, fast_retx : 1, timeout : 1,
      karn_skip : 1;
  uint8_t guest_delay : 1, hole_fill : 1, gap : 1, phase_change : 1, probe_guest : 1, init_port : 1;
};

inline uint32_t mon_time_nz(uint32_t t) { return t ? t : 1; }

inline void mon_reset(MonConn& h, MonCold& c) {
  h = MonConn{};
  c = MonCold{};
  c.port[0] = c.port[1] = 0xffff;
}

// Adds elapsed time (< 2^31 us) to one limit state's total: microseconds in
// the warm line, carried to the cold line in units of 2^31 us (~36 minutes
// of a state; 65535 of them: 4 years).
inline constexpr uint32_t kLimCarryUs = 1u << 31;
inline void mon_add_lim(MonDirWarm& w, MonDirCold& dc, uint8_t lim, uint32_t us) {
  w.lim_us[lim] += us;
  if (__builtin_expect(w.lim_us[lim] >= kLimCarryUs, 0)) {
    w.lim_us[lim] -= kLimCarryUs;
    ++dc.lim_carry[lim];
  }
}
inline uint64_t mon_lim_total_us(const MonDirWarm& w, const MonDirCold& dc, uint8_t lim) {
  return uint64_t(dc.lim_carry[lim]) * kLimCarryUs + w.lim_us[lim];
}

// Gains of one sample that stands for n per-ACK samples of the sender's own
// estimator (RFC 6298 gains applied n times: 1 - (7/8)^n and 1 - (3/4)^n,
// Q16). The switch times one segment per RTT while a Linux sender updates
// srtt on every ACK; without this the monitor's srtt would lag by ~8 RTTs.
constexpr uint32_t mon_gain_q16(uint32_t n, uint32_t keep_num, uint32_t keep_shift) {
  uint64_t keep = 1u << 16;
  for (uint32_t i = 0; i < std::min<uint32_t>(n, 64) && keep; ++i) keep = (keep * keep_num) >> keep_shift;
  return static_cast<uint32_t>((1u << 16) - keep);
}
// The gains for n = 0..8 (mon_side_sample clamps n to 1..8): a table lookup
// instead of two dependent multiply chains per sample.
template <uint32_t Num, uint32_t Shift>
struct MonGainTable {
  uint32_t g[9];
  constexpr MonGainTable() : g{} {
    for (uint32_t n = 0; n < 9; ++n) g[n] = mon_gain_q16(n, Num, Shift);
  }
};
inline constexpr MonGainTable<3, 2> kMonGainVar{};   // 1 - (3/4)^n
inline constexpr MonGainTable<7, 3> kMonGainSrtt{};  // 1 - (7/8)^n

// The weight an EWMA with time constant kGexTauUs gathers over l ticks:
// 1 - e^(-x), x = l ticks / tau. Below x = 1/16 (16 ms: every sample of a
// running guest) a cubic is exact to 7e-7 and costs a few cycles instead of
// expm1's ~30 (bench_monitor BM_Cost/10000/1, the server a guest: +33 ->
// +5 cycles/packet over the uplink case).
inline float mon_gex_weight(uint32_t l) {
  const float x = float(l << kGexTickShift) / float(kGexTauUs);
  if (x < 0.0625f) return x * (1.0f - x * (0.5f - x * (1.0f / 6.0f)));
  return -std::expm1(-x);
}

// A guest side's sample r (us) at now_us: the excess over the side's
// minimum enters the time-weighted average with the weight of the time it
// covers: from the side's previous sample (or, if later, from now - r: an
// idle connection, nothing outstanding, is not waiting) to now. That time
// is counted in whole ticks, the tick boundaries inside it, so that dense
// samples' weights add up to exactly the time they cover. The EWMA's gain
// for dt is 1 - e^(-dt/tau), so the weight gathered is mon_gex_weight(gex_l).
// old_min: the side's minimum before this sample; when the sample lowered
// it, every earlier excess grows by the difference (the average by it times
// the weight gathered: the EWMA is linear).
inline void mon_gex_update(MonSide& s, uint32_t r, uint32_t now_us, bool first, uint32_t old_min) {
  if (!first && s.min < old_min && s.gex_l) s.gex_acc += float(old_min - s.min) * mon_gex_weight(s.gex_l);
  const uint32_t from = first || int32_t(now_us - r - s.gex_t) > 0 ? now_us - r : s.gex_t;
  constexpr uint32_t kTickMask = (1u << (32 - kGexTickShift)) - 1;
  const uint32_t dt = std::min(((now_us >> kGexTickShift) - (from >> kGexTickShift)) & kTickMask,
                               (r >> kGexTickShift) + 1);
  if (dt) {
    s.gex_acc += (float(r - s.min) - s.gex_acc) * mon_gex_weight(dt);
    s.gex_l = static_cast<uint16_t>(std::min<uint32_t>(s.gex_l + dt, 0xffff));
  }
  s.gex_t = now_us;
}

// The time-weighted guest delay of a side (us): the EWMA over the weight
// it has gathered.
inline uint32_t mon_gex_avg(const MonSide& s) {
  if (!s.gex_l) return 0;
  return static_cast<uint32_t>(std::min(s.gex_acc / mon_gex_weight(s.gex_l), 4e9f));
}

// A direction's guest delay (the guest sides' time-weighted waits, us) and
// its guest share of the RTT: that wait over the RTT it belongs to, where a
// guest side's RTT is its answer time when running (its minimum) plus its
// wait and another side's is its smoothed RTT.
struct MonGuestShare {
  uint32_t delay_us;
  double share;
};
inline MonGuestShare mon_guest_share(const MonSide (&side)[2], const uint8_t (&role)[2]) {
  uint32_t gex = 0;
  uint64_t base = 0;
  for (uint8_t e = 0; e < 2; ++e) {
    if (role[e] == kRoleGuest) {
      const uint32_t g = mon_gex_avg(side[e]);
      gex += g;
      base += uint64_t(side[e].min) + g;
    } else {
      base += side[e].srtt;
    }
  }
  return {gex, base ? double(gex) / double(base) : 0.0};
}

// acks: how many ACKs the sender saw for this one sample (>= 1).
inline void mon_side_sample(MonSide& s, uint32_t r, bool guest, bool full, uint32_t now_us, uint32_t acks = 1) {
  const bool first = s.n == 0;
  const uint32_t old_min = s.min;
  if (s.n == 0 || r < s.min) s.min = r;
  s.max = std::max(s.max, r);
  if (full) {
    if (s.n == 0) {
      s.srtt = r;
      s.var = r / 2;
    } else {
      const uint32_t err = r > s.srtt ? r - s.srtt : s.srtt - r;
      // Capped: one timed segment is a noisier sample than the sender's many.
      const uint32_t n = std::clamp<uint32_t>(acks, 1, 8);
      const int64_t gv = n == 1 ? (1 << 14) : kMonGainVar.g[n];   // 1/4
      const int64_t gs = n == 1 ? (1 << 13) : kMonGainSrtt.g[n];  // 1/8
      s.var = static_cast<uint32_t>(int64_t(s.var) + ((int64_t(err) - int64_t(s.var)) * gv >> 16));
      s.srtt = static_cast<uint32_t>(int64_t(s.srtt) + ((int64_t(r) - int64_t(s.srtt)) * gs >> 16));
    }
    if (s.n < 0xffff) ++s.n;
  } else if (s.n == 0) {  // a bound only: still give the estimator a starting point
    s.srtt = r;
    s.var = r / 2;
    s.n = 1;
  } else {
    s.srtt = std::min(s.srtt, r);  // may only pull the estimate down
  }
  if (guest) mon_gex_update(s, r, now_us, first, old_min);
}

// Refreshes the hot thresholds of direction `snd` after a side estimate moved.
inline void mon_refresh(MonConn& h, const MonCold& c, uint8_t snd, const MonParams& p) {
  MonDir& d = h.d[snd];
  const MonSide& ss = c.side[snd];
  const MonSide& rs = c.side[snd ^ 1];
  const uint32_t e2e = ss.srtt + rs.srtt;
  const uint32_t var = ss.var + rs.var;
  d.win_len = std::max<uint32_t>(e2e, 200);
  d.thr_up = static_cast<uint16_t>(std::clamp<uint32_t>(2 * ss.min + 150, 150, 60000));
  const uint32_t rto_us = std::max<uint32_t>((e2e + 4 * var), p.rto_min_ms * 900);  // 90 % of the floor
  d.rto_ms = static_cast<uint16_t>(std::min<uint32_t>(rto_us / 1000, 60000));
}

// A full RTT sample r of side S, the acknowledger of direction S ^ 1,
// taken from its ACK: it stands for the `acks` ACKs since the last one
// (then cleared); both directions' thresholds follow.
inline void mon_ack_sample(MonConn& h, MonCold& c, uint8_t S, uint32_t r, bool guest, uint32_t now_us, uint8_t& acks,
                           const MonParams& p) {
  mon_side_sample(c.side[S], r, guest, true, now_us, std::max<uint32_t>(1, acks));
  acks = 0;
  mon_refresh(h, c, S ^ 1, p);
  mon_refresh(h, c, S, p);
}

// What a direction is limited by right now (after the event was applied).
// mss: the sender's segment size (mon_eff_mss). Receiver window: the next
// full segment would not fit (Linux tcp_snd_wnd_test: seq + mss > una + wnd).
inline uint8_t mon_limit_state(const MonDir& d, uint32_t rwnd, uint32_t mss) {
  const uint32_t flight = d.nxt - d.una;
  if (!(d.flags & dflag::kSeq) || !(d.flags & dflag::kAck) || flight == 0 || flight > 0x7fffffffu)
    return kLimSender;  // nothing outstanding: the sender had nothing to send
  if (uint64_t(flight) + mss > rwnd) return kLimRwnd;
  if (d.phase == kRecovery || d.phase == kLoss) return kLimNetwork;
  return d.clocked >= 128 ? kLimNetwork : kLimSender;
}

// The sender's segment payload: its MSS option less the 12 bytes of the
// timestamp option when timestamps are on (Linux's mss_cache), else the
// largest segment seen.
inline uint32_t mon_eff_mss(const TcpDirState& snd) {
  uint32_t m = snd.mss;
  if ((snd.flags & dirflag::kMssKnown) && (snd.flags & dirflag::kTsOk) && m > 12 + 536) m -= 12;
  return std::max<uint32_t>(m, 536);
}

// Splits the open limit interval [d.lim_since, now) into states: a
// receiver-window interval gives its pacing hold to network and, when an ACK
// opened room, whatever lasted beyond one window after that ACK to the
// state the open room means (network if the sender is backlogged, else sender).
// add(state, us) is called per part; mon_lim_split adds them to t[].
template <typename Add>
inline void mon_lim_split_to(const MonDir& d, uint32_t now, Add add) {
  uint32_t el = now - d.lim_since;
  if (el > 0x7fffffffu) el = 0;
  if (d.lim != kLimRwnd) {
    add(d.lim, el);
    return;
  }
  if (d.xflags & xflag::kPaceHold) {
    const uint32_t hold = std::min<uint32_t>(el, uint32_t(d.pace4) * 4);
    add(kLimNetwork, hold);
    el -= hold;
  }
  if (d.xflags & xflag::kRoomOpen) {
    const uint32_t end = d.lim_since + d.win_len;
    const int32_t over = int32_t(now - end);
    if (over > 0) {
      const uint32_t o = std::min<uint32_t>(uint32_t(over), el);
      add(d.clocked >= 128 ? kLimNetwork : kLimSender, o);
      el -= o;
    }
  }
  add(kLimRwnd, el);
}

template <typename T>
inline void mon_lim_split(const MonDir& d, uint32_t now, T* t) {
  mon_lim_split_to(d, now, [t](uint8_t k, uint32_t us) { t[k] += us; });
}

// Closes the open interval at `until` into the totals (state unchanged).
// (Straight into the totals: through an array of the parts the compiler
// vectorized the adds, and the vector load after the scalar stores stalled,
// 4x this function's cost.)
inline void mon_lim_close(MonDir& d, MonDirWarm& dw, MonDirCold& dc, uint32_t until) {
  mon_lim_split_to(d, until, [&](uint8_t k, uint32_t us) {
    if (us) mon_add_lim(dw, dc, k, us);
  });
  d.lim_since = until;
  d.xflags = 0;
}

// Moves direction d to limit state st after an event at now. data: the event
// was data from d's sender (else an ACK / window update from its receiver).
// Linux's chrono (tcp_write_xmit) is the reference: receiver-window-limited
// only when the sender tried to send and pacing and cwnd allowed it, and it
// stays so until the sender has processed the ACK that opens the window.
inline void mon_lim_update(MonDir& d, MonDirWarm& dw, MonDirCold& dc, uint8_t st, bool data, uint32_t now) {
  if (d.lim == kLimRwnd) {
    if (st == kLimRwnd) {
      if (data) {  // the sender filled the window again: a new pacing hold starts
        mon_lim_close(d, dw, dc, now);
        d.xflags = xflag::kPaceHold;
      }
      return;
    }
    if (!data) {  // room opened by the receiver
      const bool held = (d.xflags & xflag::kPaceHold) && now - d.lim_since < uint32_t(d.pace4) * 4;
      if (!held) {  // the sender was window-limited and is until it reacts
        if (!(d.xflags & xflag::kRoomOpen)) {
          mon_lim_close(d, dw, dc, now);  // the served pacing hold to network; rwnd goes on from here
          d.xflags = xflag::kRoomOpen;
        }
        return;
      }
      // The ACK came within the pacing hold: the sender was pacing (busy) all along.
    }
    mon_lim_close(d, dw, dc, now);
    d.lim = st;
    return;
  }
  if (st != d.lim) {
    mon_lim_close(d, dw, dc, now);
    d.lim = st;
    if (st == kLimRwnd && data) d.xflags = xflag::kPaceHold;
  }
}

// Removes time from one limit state's total (re-attribution).
inline void mon_sub_lim(MonDirWarm& w, MonDirCold& dc, uint8_t lim, uint32_t us) {
  if (w.lim_us[lim] < us && dc.lim_carry[lim]) {  // borrow back from the carried part (us < 2^31)
    --dc.lim_carry[lim];
    w.lim_us[lim] += kLimCarryUs;
  }
  w.lim_us[lim] -= std::min(w.lim_us[lim], us);
}

// How long a guest may take to answer before its silence counts as not
// running: the stall beyond its minimum answer time. The minimum is capped at
// the stall itself: a guest is local to the switch, and a minimum above that
// contains scheduling (e.g. a handshake answered after an off period, the
// first sample of that side).
inline uint32_t mon_guest_thr(const MonSide& s, const MonParams& p) {
  return p.guest_stall_us + std::min(s.min, p.guest_stall_us);
}

// A guest did not answer from `from` until now: it was not running. The open
// interval up to `from` keeps its state (time before lim_since is attributed
// already), the rest is guest scheduling.
inline void mon_guest_silence(MonDir& d, MonDirWarm& dw, MonDirCold& dc, uint32_t from, uint32_t now) {
  if (int32_t(from - d.lim_since) < 0) from = d.lim_since;
  if (int32_t(now - from) <= 0) return;  // now: when the switch last saw the guest silent (mon_seen_us)
  mon_lim_close(d, dw, dc, from);
  mon_add_lim(dw, dc, kLimGuest, now - from);
  d.lim_since = now;
}

// Direction d, whose sender is a guest, is in a silence (ACKs it has not
// answered since d.last_ack) and an ACK just closed the interval that b (d
// before the ACK) had open, at `until`: remembers the part after the silence
// began, per state, so that it can become guest time.
inline void mon_sil_note(const MonDir& b, uint32_t until, MonDirCold& dc, uint16_t (&sil)[kLimGuest]) {
  if (dc.sil_from != b.last_ack) {
    dc.sil_from = b.last_ack;
    for (uint16_t& u : sil) u = 0;
  }
  uint32_t full[kLimCount] = {}, pre[kLimCount] = {};
  mon_lim_split(b, until, full);
  if (int32_t(b.last_ack - b.lim_since) > 0) mon_lim_split(b, b.last_ack, pre);
  for (uint8_t k = 0; k < kLimGuest; ++k)
    if (full[k] > pre[k])
      sil[k] = static_cast<uint16_t>(std::min<uint32_t>(sil[k] + (full[k] - pre[k] + 4) / 8, 0xffff));
}

// A guest sender had ACKs (room to send) since d.last_ack and did not answer
// until now: it was not running all that time, also the part already closed
// into other states while its unanswered ACKs drained the flight (in a bulk
// transfer the data it sent before going off keeps the network busy and the
// ACKs coming for up to the queueing delay; then nothing is outstanding).
inline void mon_guest_sender_silence(MonDir& d, MonDirWarm& dw, MonDirCold& dc, const uint16_t (&sil)[kLimGuest],
                                     uint32_t now) {
  if (dc.sil_from == d.last_ack && d.last_ack) {
    // Only what was closed before `now` (the switch's last look, mon_seen_us):
    // ACKs it handled after a stall of its own closed the stall too.
    const uint32_t end = int32_t(now - d.lim_since) < 0 ? now : d.lim_since;
    uint32_t cap = int32_t(end - d.last_ack) > 0 ? end - d.last_ack : 0;
    for (uint8_t k = 0; k < kLimGuest; ++k)
      if (sil[k]) {
        const uint32_t us = std::min(uint32_t(sil[k]) * 8, cap);
        cap -= us;
        mon_sub_lim(dw, dc, k, us);
        mon_add_lim(dw, dc, kLimGuest, us);
      }
    dc.sil_from = 0;
  }
  mon_guest_silence(d, dw, dc, d.last_ack, now);
}

// A timed segment: where it ends and when it passed.
struct MonTimed {
  uint32_t end, t;
};
// The queued entry after `prev` (the head for entry 0).
inline MonTimed mon_rq_next(const MonDirWarm& w, uint32_t i, MonTimed prev) {
  return {prev.end + uint32_t(w.rq_dend[i]) * kRqEndUnit, prev.t + uint32_t(w.rq_dt[i]) * kRqTimeUnit};
}

// Starts timing a new segment ending at end (passed at now) if the head is
// free, or queues it when the previous timed one is at least a sixth of the
// flight (and a segment) behind. Returns true if it became the head.
inline bool mon_rtt_start(MonDir& d, MonDirWarm& w, uint32_t end, uint32_t len, uint32_t now, uint32_t mss) {
  if (!d.rtt_t) {
    d.rtt_t = now;
    d.rtt_end = end;
    d.acks = 0;
    return true;
  }
  if (w.rq_n >= kRttQueue || len < kRqEndUnit) return false;
  MonTimed last{d.rtt_end, d.rtt_t};
  for (uint32_t j = 0; j < w.rq_n; ++j) last = mon_rq_next(w, j, last);
  // A sixth of the window: the larger of the flight now and the last RTT's largest.
  const uint32_t space = std::min(kRqMaxSpace, std::max<uint32_t>(mss, std::max(d.nxt - d.una, d.fl_prev) / kRttSpacing));
  if (net::Seq(end) < net::Seq(last.end) + space) return false;
  const uint32_t de = (end - last.end) / kRqEndUnit, dt = (now - last.t) / kRqTimeUnit;
  if (de > 0xffff || dt > 0xffff) return false;
  w.rq_dend[w.rq_n] = static_cast<uint16_t>(de);
  w.rq_dt[w.rq_n] = static_cast<uint16_t>(dt);
  w.rq_dead = static_cast<uint8_t>(w.rq_dead & ~(1u << w.rq_n));
  ++w.rq_n;
  return false;
}

// Removes queued entries [from, from + n) and their dead bits; the later
// ones move down (their deltas are unchanged: the caller has made them
// relative to what now precedes them).
inline void mon_rq_remove(MonDirWarm& w, uint32_t from, uint32_t n) {
  for (uint32_t j = from + n; j < w.rq_n; ++j) {
    w.rq_dend[j - n] = w.rq_dend[j];
    w.rq_dt[j - n] = w.rq_dt[j];
  }
  const uint32_t below = w.rq_dead & ((1u << from) - 1);
  w.rq_dead = static_cast<uint8_t>(below | ((w.rq_dead >> (from + n)) << from));
  w.rq_n = static_cast<uint8_t>(w.rq_n - n);
}

// Removes queued entry i; the next one keeps its place (its deltas absorb
// entry i's; where they would not fit, entry i stays, marked dead).
inline void mon_rq_erase(MonDirWarm& w, uint32_t i) {
  if (i + 1 < w.rq_n) {
    const uint32_t de = uint32_t(w.rq_dend[i]) + w.rq_dend[i + 1], dt = uint32_t(w.rq_dt[i]) + w.rq_dt[i + 1];
    if (de > 0xffff || dt > 0xffff) {
      w.rq_dead = static_cast<uint8_t>(w.rq_dead | (1u << i));
      return;
    }
    w.rq_dend[i + 1] = static_cast<uint16_t>(de);
    w.rq_dt[i + 1] = static_cast<uint16_t>(dt);
  }
  mon_rq_remove(w, i, 1);
}

// Removes the queued entries whose end `drop` selects (oldest first); returns
// the time of the first one removed (0: none).
template <typename Pred>
inline uint32_t mon_rq_drop_if(const MonDir& d, MonDirWarm& w, Pred drop) {
  uint32_t first = 0;
  MonTimed prev{d.rtt_end, d.rtt_t};
  for (uint32_t j = 0; j < w.rq_n;) {
    const MonTimed e = mon_rq_next(w, j, prev);
    const uint8_t n = w.rq_n;
    if (!(w.rq_dead & (1u << j)) && drop(e.end)) {
      if (!first) first = mon_time_nz(e.t);
      mon_rq_erase(w, j);  // entry j is now the next one, relative to prev (or j is dead now)
      if (w.rq_n < n) continue;
    }
    prev = e;
    ++j;
  }
  return first;
}

// Drops the timed segments an ACK up to ack covers; the next becomes the head.
inline void mon_rtt_pop(MonDir& d, MonDirWarm& w, uint32_t ack) {
  MonTimed e{d.rtt_end, d.rtt_t};
  for (uint32_t i = 0; i < w.rq_n; ++i) {
    e = mon_rq_next(w, i, e);
    if (net::Seq(ack) < net::Seq(e.end) && !(w.rq_dead & (1u << i))) {
      d.rtt_end = e.end;  // entry i is the new head; the rest are relative to it
      d.rtt_t = mon_time_nz(e.t);
      mon_rq_remove(w, 0, i + 1);
      return;
    }
  }
  d.rtt_t = 0;
  w.rq_n = 0;
  w.rq_dead = 0;
}

// Karn: a retransmission of [seq, end) makes the timed segments it resends
// ambiguous: they are dropped (returns true if any was). Those above it stay
// timed: the receiver's SACK for them is a valid sample (Linux's sack_rtt),
// but a cumulative ACK that also acknowledges the resent range is not (see
// mon_rtt_ack_valid); the range joins the outstanding retransmitted space.
inline bool mon_rtt_karn(MonDir& d, MonDirWarm& dw, MonDirCold& dc, uint32_t seq, uint32_t end,
                         const net::TcpOptions& opts, uint32_t now) {
  if (opts.has(net::kOptTs)) {
    dc.rtx_tsval = opts.ts_val;
    dc.rtx_end = end;
    dc.rtx_t = mon_time_nz(now);
  }
  if (net::Seq(end) <= net::Seq(d.una) && (d.flags & dflag::kAck)) {
    // Acknowledged already (a spurious retransmission): no ACK to come covers it.
  } else if (!(dw.gflags & gflag::kRtxOut)) {
    dc.rtx_lo = seq;
    dc.rtx_hi = end;
    dw.gflags |= gflag::kRtxOut;
  } else {
    if (net::Seq(seq) < net::Seq(dc.rtx_lo)) dc.rtx_lo = seq;
    if (net::Seq(end) > net::Seq(dc.rtx_hi)) dc.rtx_hi = end;
  }
  if (!d.rtt_t) return false;
  const auto resent = [&](uint32_t e) { return net::Seq(e) > net::Seq(seq) && net::Seq(e) <= net::Seq(end); };
  bool dropped = mon_rq_drop_if(d, dw, resent) != 0;
  if (resent(d.rtt_end)) {
    mon_rtt_pop(d, dw, d.rtt_end);
    dropped = true;
  }
  return dropped;
}

// An ACK advancing una from una_old to ack: false if it acknowledges
// retransmitted data (its timing says nothing about the timed segment's RTT);
// forgets the retransmitted space once una has passed all of it.
inline bool mon_rtt_ack_valid(MonDirWarm& dw, MonDirCold& dc, uint32_t una_old, uint32_t ack) {
  if (!(dw.gflags & gflag::kRtxOut)) return true;
  const bool valid = !(net::Seq(ack) > net::Seq(dc.rtx_lo) && net::Seq(una_old) < net::Seq(dc.rtx_hi));
  if (net::Seq(ack) >= net::Seq(dc.rtx_hi)) dw.gflags &= static_cast<uint8_t>(~gflag::kRtxOut);
  return valid;
}

// Environment of the inference: port roles and guest ring probes. The stage
// implements it over the Datapath; tests fake it.
//   uint8_t role(uint16_t port);
//   bool guest_off(uint16_t port);   // guest not running / its ring full now
//   uint32_t seen_us(uint32_t now);  // optional: the switch's last look at its rx rings (mon_seen_us)
//   uint32_t stall_end(uint32_t t);  // optional: end of a stall of the switch around t, else t (mon_after_stall)

// Until when the switch saw a guest silent: a packet handled at now_us may
// have waited in the switch's own rx ring since the PMD last drained it
// (PmdContext::rx_seen_tsc), e.g. while the PMD thread was descheduled by
// the host. That wait is the switch's, not the guest's: the guest-scheduling
// checks measure silences up to this time. Without seen_us in Env: now_us.
// When a packet the switch handled at t reached its port: the PMD may have
// been descheduled between the monitor's step and the send
// (PmdContext::tx_stalls). Data toward a guest stamped before such a stall
// reached the guest only at its end, and the guest's silence starts there.
// Without stall_end in Env: t.
template <typename Env>
inline uint32_t mon_after_stall(Env& env, uint32_t t) {
  if constexpr (requires { env.stall_end(t); }) {
    return env.stall_end(t);
  } else {
    return t;
  }
}

template <typename Env>
inline uint32_t mon_seen_us(Env& env, uint32_t now_us) {
  if constexpr (requires { env.seen_us(now_us); }) {
    const uint32_t s = env.seen_us(now_us);
    return int32_t(now_us - s) >= 0 ? s : now_us;
  } else {
    return now_us;
  }
}

// The per-packet inference. h/c: the connection's state; s/r: the packet as
// tracked by the flow table; conn: the table's entry (window scales, MSS);
// now_us: batch time (never 0); in_port: ingress port.
template <typename Env>
inline MonOut mon_packet(MonConn& h, MonCold& c, const TcpSegment& s, const TrackResult& r, const TcpConn& conn,
                         uint32_t now_us, uint16_t in_port, Env& env, const MonParams& p) {
  using net::Seq;
  MonOut o{};
  const uint8_t S = r.dir & 1, R = S ^ 1;
  MonDir& fw = h.d[S];  // direction of this packet's data
  MonDir& rv = h.d[R];  // direction this packet's ACK acknowledges
  if (r.events & kEvCreated) {
    mon_reset(h, c);
    c.midstream = (r.events & kEvMidstream) ? 1 : 0;
    const uint8_t ph = c.midstream ? kPhaseUnknown : kSlowStart;
    h.d[0].phase = h.d[1].phase = ph;
    h.d[0].win_len = h.d[1].win_len = 200;
    h.d[0].thr_up = h.d[1].thr_up = 500;
    h.d[0].rto_ms = h.d[1].rto_ms = static_cast<uint16_t>(std::min<uint32_t>(p.rto_min_ms, 60000));
    h.d[0].win_t = h.d[1].win_t = h.d[0].lim_since = h.d[1].lim_since = now_us;
  }
  if (!(fw.flags & dflag::kSeen)) {  // first packet from this endpoint: learn its port and role
    fw.flags |= dflag::kSeen;
    c.port[S] = in_port;
    c.role[S] = env.role(in_port);
    if (c.role[S] == kRoleGuest) {
      fw.flags |= dflag::kSndGuest;
      rv.flags |= dflag::kRcvGuest;
    }
    o.init_port = 1;
    if (c.role[S] == kRoleGuest && s.syn() && !s.has_ack() && s.opts.has(net::kOptTs) && !c.midstream) {
      c.w[S].gflags = gflag::kSynTrack;
      c.syn_t = now_us;
      c.syn_ts = s.opts.ts_val;
    }
  }
  // A guest initiator's SYN that waited before it reached the switch: a later
  // packet of the same guest that left promptly (its first answer to the
  // SYN-ACK, its first data) carries a TSval that many ms further ahead of the
  // SYN's than the switch's clock advanced (less one TSval tick: ms
  // granularity). Guest time: the connection existed in the guest that long
  // before the switch saw it. In a real VM the guest cannot send while it is
  // not running and this stays 0; a guest whose packets wait in its NIC queue
  // (vmsim, a backend thread not scheduled) shows it.
  if ((fw.flags & dflag::kSndGuest) && __builtin_expect(c.w[S].gflags & gflag::kSynTrack, 0) && !s.syn() &&
      s.opts.has(net::kOptTs)) {
    const int64_t ahead = int64_t(int32_t(s.opts.ts_val - c.syn_ts)) * 1000 - int64_t(int32_t(now_us - c.syn_t)) - 1000;
    if (ahead > 0 && ahead < 1'000'000 && ((c.w[S].gflags & gflag::kSynCounted) || ahead > int64_t(p.guest_stall_us))) {
      mon_add_lim(c.w[S], c.d[S], kLimGuest, static_cast<uint32_t>(ahead));
      c.syn_t -= static_cast<uint32_t>(ahead);  // later packets count only what exceeds this
      c.w[S].gflags |= gflag::kSynCounted;
      o.guest_delay = 1;
    }
  }
  const TcpDirState& snd_st = conn.d[S];
  const TcpDirState& rcv_st = conn.d[R];
  // c.role[S] == kRoleGuest, from the hot line (c.role is on a line a packet
  // otherwise does not touch).
  const bool s_guest = fw.flags & dflag::kSndGuest;
  // Before this packet's ACK is applied: did R have data outstanding toward S?
  const bool peer_had_flight =
      (rv.flags & dflag::kSeq) && (rv.flags & dflag::kAck) && Seq(rv.nxt) > Seq(rv.una);

  // ---- a guest sender's silence ends with anything it sends ----
  // The guest sender had an ACK (room to send) and did not answer for a long
  // time: it was not running, from the first ACK it left unanswered. Checked
  // before this packet's ACK is applied: the ACK that answers a SYN-ACK after
  // an off period also gives the guest side's first sample. A packet without
  // data (an ACK, a window update) shows the guest running: its silence
  // restarts there. (A guest receiver's silence, below, takes precedence when
  // both ends are guests.) After its FIN it has nothing more to send.
  // An ACK toward the guest stamped before a stall of the switch's own
  // (descheduled between its step and the send) reached the guest at the
  // stall's end: the silence starts there (mon_after_stall; looked up only
  // for a silence long enough already).
  const uint32_t seen_us = mon_seen_us(env, now_us);
  if ((fw.flags & (dflag::kSndGuest | dflag::kRcvGuest | dflag::kLastAck)) == (dflag::kSndGuest | dflag::kLastAck) &&
      fw.last_ack && !s.rst()) {
    const int32_t thr = int32_t(mon_guest_thr(c.side[S], p));
    if (int32_t(seen_us - fw.last_ack) > thr && uint64_t(fw.nxt - fw.una) + snd_st.mss <= rcv_st.win &&
        !(c.w[S].gflags & gflag::kFinSent)) {
      const uint32_t from = mon_after_stall(env, fw.last_ack);
      if (from != fw.last_ack) {
        if (c.d[S].sil_from == fw.last_ack) c.d[S].sil_from = from;
        fw.last_ack = from;
      }
      if (int32_t(seen_us - fw.last_ack) > thr) {
        mon_guest_sender_silence(fw, c.w[S], c.d[S], c.sil_8us[S], seen_us);
        o.guest_delay = 1;
      }
    }
    if (s.seq_len() == 0) fw.last_ack = now_us;
  }
  if (__builtin_expect(s.fin(), 0) && (fw.flags & dflag::kSndGuest)) c.w[S].gflags |= gflag::kFinSent;

  // ---- the ACK: acknowledges direction R -> S ----
  if (s.has_ack() && !s.rst()) {
    MonDir& d = rv;
    MonDirCold& dc = c.d[R];
    MonDirWarm& dw = c.w[R];
    const bool had_evt = d.last_evt != 0;
    // Guest override: the receiver S is a guest and left data unacknowledged
    // for much longer than it usually takes to answer. Its silence began at
    // its last ACK of any kind (or at the data that ended an idle period),
    // not at the sender's last packet: the sender of a descheduled guest
    // keeps sending until its window is used up (and probes the tail), which
    // is guest time too.
    // The gap since the last event must exceed the stall as well: a guest
    // that answers the sender's latest packet (e.g. a retransmission after an
    // RTO for data its full ring dropped) promptly was running.
    // (Both measured up to the switch's last look, mon_seen_us.)
    // Times stamped before a stall of the switch's own (descheduled between
    // its step and the send) start at the stall's end: the data reached the
    // guest only then (checked only for a silence long enough already).
    const int32_t gap = had_evt ? int32_t(seen_us - d.last_evt) : 0;
    const bool owed = (d.flags & dflag::kSeq) && (d.flags & dflag::kAck) && Seq(d.nxt) > Seq(d.una);
    const int32_t thr = int32_t(mon_guest_thr(c.side[S], p));
    if ((d.flags & dflag::kRcvGuest) && owed && gap > thr &&
        int32_t(seen_us - mon_after_stall(env, d.last_evt)) > thr) {
      mon_guest_silence(d, dw, dc, mon_after_stall(env, d.last_ack ? d.last_ack : d.last_evt), seen_us);
      o.guest_delay = 1;
    }
    bool karn_bad = false;  // this ACK advanced una over retransmitted data
    // An RTT sample of S's side (the acknowledger) from this ACK: it stands
    // for the ACKs since the last one (the sender's per-ACK updates).
    const auto rtt_sample = [&](uint32_t r) {
      mon_ack_sample(h, c, S, r, s_guest, now_us, d.acks, p);
      o.rtt_sample = 1;
    };
    if (!(d.flags & dflag::kAck)) {
      d.una = s.ack;
      d.flags |= dflag::kAck;
      if (!(d.flags & dflag::kSeq)) d.nxt = s.ack;
    } else if (Seq(s.ack) > Seq(d.una)) {
      const uint32_t una_old = d.una;
      d.una = s.ack;
      if ((d.flags & dflag::kSndGuest) && (dw.gflags & gflag::kSynTrack) && !s.syn())
        dw.gflags &= static_cast<uint8_t>(~gflag::kSynTrack);
      if (Seq(d.una) > Seq(d.nxt)) d.nxt = d.una;  // acks what we never saw (mid-stream)
      d.dupacks = 0;
      if (d.acks < 255) ++d.acks;
      // Toward a guest sender, the first ACK after its data starts the time
      // it may be silent for.
      if (!(d.flags & dflag::kRcvGuest) && !(d.flags & dflag::kLastAck)) d.last_ack = now_us;
      d.flags |= dflag::kLastAck;
      karn_bad = !mon_rtt_ack_valid(dw, dc, una_old, s.ack);
      if (d.rtt_t && Seq(s.ack) >= Seq(d.rtt_end)) {
        if (karn_bad) {  // it also acknowledges resent data: no sample
          ++dc.karn_skipped;
          o.karn_skip = 1;
        } else {  // Karn sample: the oldest timed segment this ACK covers (Linux:
                  // the first newly acknowledged segment's send time)
          rtt_sample(now_us - d.rtt_t);
          d.flags &= static_cast<uint8_t>(~dflag::kRttGuestOff);
        }
        mon_rtt_pop(d, dw, s.ack);  // the others it covers are done
      }
      if ((d.phase == kRecovery || d.phase == kLoss) && Seq(s.ack) >= Seq(dc.recover)) {
        d.phase = d.phase == kRecovery ? kCongAvoid : kSlowStart;
        o.phase_change = 1;
      }
    } else if (s.ack == d.una && s.payload_len == 0 && !s.syn() && !s.fin() && Seq(d.nxt) > Seq(d.una)) {
      if (d.dupacks < 255) ++d.dupacks;
      // In recovery each one with SACK blocks updates the sender's srtt (a
      // SACK sample): it counts toward the next sample's gain.
      if (s.opts.n_sack && d.acks < 255) ++d.acks;
      ++dc.dupacks;
      o.dupack = 1;
      if (d.dupacks == p.dupthresh && d.phase != kRecovery && d.phase != kLoss) {
        d.phase = kRecovery;
        dc.recover = d.nxt;
        dc.ssthresh = std::max<uint32_t>((d.nxt - d.una) / 2, 2u * rcv_st.mss);
        ++dc.fast_retx;
        o.fast_retx = o.phase_change = 1;
      }
    }
    // SACK sample (Linux's sack_rtt_us, what it uses when no segment is newly
    // acknowledged cumulatively, i.e. during loss recovery): the oldest timed
    // segment whose end this ACK's SACK blocks cover (the receiver has it;
    // the cumulative ACK that covers it later may also cover resent data).
    // Every timed segment the blocks cover is done, also when this ACK gave
    // a cumulative sample already (a later ACK repeats the blocks: no stale
    // samples).
    if (__builtin_expect(s.opts.n_sack != 0, 0) && d.rtt_t) {
      auto sacked = [&](uint32_t end) {
        if (Seq(end) <= Seq(d.una)) return false;
        for (uint32_t i = 0; i < s.opts.n_sack; ++i) {
          const net::SackBlock& b = s.opts.sack[i];
          if (Seq(b.left) < Seq(end) && Seq(end) <= Seq(b.right) && Seq(b.right) > Seq(s.ack)) return true;
        }
        return false;
      };
      uint32_t t = mon_rq_drop_if(d, dw, sacked);
      if (sacked(d.rtt_end)) {
        t = d.rtt_t;
        mon_rtt_pop(d, dw, d.rtt_end);
      }
      if (t && !o.rtt_sample) rtt_sample(now_us - t);
    }
    // Timestamp sample (Linux's tcp_rtt_tsopt_us: an ACK that advanced una
    // over retransmitted data, with no Karn or SACK sample): the ACK that
    // ends a repair (covers the last retransmission) echoes the
    // retransmission's TSval; its RTT is that of the retransmission (without
    // it the sender's srtt, which takes it, and the monitor's part at the end
    // of a recovery). An original sent in the same TSval tick echoes the same
    // value: if the ACK was the original's, the sample is short by the time
    // between the two, and one shorter than the side's minimum is dropped.
    if (__builtin_expect(karn_bad, 0) && !o.rtt_sample && s.opts.has(net::kOptTs) && dc.rtx_t &&
        s.opts.ts_ecr == dc.rtx_tsval && Seq(s.ack) >= Seq(dc.rtx_end) &&
        (c.side[S].n == 0 || now_us - dc.rtx_t >= c.side[S].min)) {
      rtt_sample(now_us - dc.rtx_t);
      dc.rtx_t = 0;
    }
    if (s.flags & net::tcpflag::kEce) ++dc.ece;
    if (had_evt || (d.flags & dflag::kSeq)) d.last_evt = now_us;
    // Any ACK (also a duplicate in loss recovery) shows a guest receiver running.
    if (d.flags & dflag::kRcvGuest) d.last_ack = now_us;
  }

  // ---- timestamp echo: side RTT of S (S answers the TSval R sent) ----
  // The first packet with TSval w passed toward S at ts_t; S's first packet
  // echoing w closes the sample. If S is acknowledging R's data this is S's
  // side as a receiver (like a Karn sample, but about one per TSval tick, so
  // several per RTT). If S is sending data, it also contains S's response
  // time (cwnd room, TCP small queues, the application): only the minimum of
  // each group of kTsGroup enters the estimator. TSvals tick in ms at most
  // senders: a sample can be late by the spacing of two segments.
  if (s.opts.has(net::kOptTs)) {
    if (fw.ts_t && s.opts.ts_ecr == fw.ts_w) {
      const uint32_t r = now_us - fw.ts_t;
      const bool sending = s.payload_len > 0 ||
                           ((fw.flags & dflag::kSeq) && (fw.flags & dflag::kAck) && Seq(fw.nxt) > Seq(fw.una));
      if (p.ts_receiver_samples && peer_had_flight && s.payload_len == 0) {
        if (!o.rtt_sample) {  // the same ACK already gave a Karn sample
          mon_ack_sample(h, c, S, r, s_guest, now_us, rv.acks, p);
          o.ts_sample = 1;
        }
      } else if (sending) {
        MonSide& sd = c.side[S];
        uint8_t& wn = c.w[S].ts_wn;
        sd.wmin = wn ? std::min(sd.wmin, r) : r;
        if (++wn >= kTsGroup || sd.n == 0) {
          // A sender that is not backlogged answers when its application
          // writes: such a sample only bounds the minimum.
          mon_side_sample(sd, sd.wmin, s_guest, fw.lim != kLimSender, now_us,
                          std::max<uint32_t>(1, (fw.nxt - fw.una) / (2 * std::max<uint32_t>(snd_st.mss, 536))));
          wn = 0;
          mon_refresh(h, c, S, p);
          mon_refresh(h, c, R, p);
        }
        o.ts_sample = 1;
      }
      fw.ts_t = 0;
    } else if (fw.ts_t && Seq(s.opts.ts_ecr) > Seq(fw.ts_w)) {
      fw.ts_t = 0;  // echoes something newer: this one is lost
    }
    if (!rv.ts_t && s.opts.ts_val != rv.ts_w) {  // R will echo S's TSval
      rv.ts_w = s.opts.ts_val;
      rv.ts_t = now_us;
    }
  }

  // ---- the data: direction S -> R ----
  const uint32_t len = s.seq_len();
  if (len > 0 && !s.rst()) {
    MonDir& d = fw;
    MonDirCold& dc = c.d[S];
    MonDirWarm& dw = c.w[S];
    const uint32_t gap = d.last_evt ? now_us - d.last_evt : 0;
    const Seq seq(s.seq), end = Seq(s.seq) + len;
    if (!(d.flags & dflag::kSeq)) {
      d.nxt = end.raw();
      d.flags |= dflag::kSeq;
      if (!(d.flags & dflag::kAck)) {
        d.una = s.seq;
        d.flags |= dflag::kAck;
      }
      if (!d.rtt_t) {
        d.rtt_t = now_us;
        d.rtt_end = end.raw();
        d.acks = 0;
        o.probe_guest = (d.flags & dflag::kRcvGuest) ? 1 : 0;
      }
    } else if (seq < Seq(d.nxt)) {
      const Seq top = Seq::min(end, Seq(d.nxt));
      const bool fill = (d.flags & dflag::kHole) && seq >= Seq(dc.hole_lo) && seq < Seq(dc.hole_hi);
      if (fill) {
        ++dc.fills;
        o.hole_fill = 1;
        // Timed segments above the hole are acknowledged cumulatively only
        // once it is filled, and such a sample would contain the sender's
        // repair: the filled range counts as resent (no sample from the ACK
        // that covers it; their SACK samples stay valid).
        if (mon_rtt_karn(d, dw, dc, seq.raw(), top.raw(), s.opts, now_us)) ++dc.karn_skipped;
        if (seq == Seq(dc.hole_lo)) dc.hole_lo = top.raw();
        if (Seq(dc.hole_lo) >= Seq(dc.hole_hi)) d.flags &= static_cast<uint8_t>(~dflag::kHole);
      } else {
        // Payload bytes resent: the FIN's (or SYN's) sequence unit is no byte
        // of a segment (a 264-byte FIN segment resent is one segment, not 2).
        const uint32_t ctl = (s.fin() && top == end ? 1u : 0u) + (s.syn() ? 1u : 0u);
        const uint32_t bytes = static_cast<uint32_t>(top - seq) - std::min(ctl, static_cast<uint32_t>(top - seq));
        // Wire segments: the sender's MSS bounds a TSO / GRO super-packet's segments.
        uint32_t seg = s.seg_size ? s.seg_size : snd_st.mss;
        if (snd_st.mss && seg > snd_st.mss) seg = snd_st.mss;
        seg = std::max<uint32_t>(seg, 1);
        const uint32_t segs = std::max<uint32_t>(1, (bytes + seg - 1) / seg);
        dc.retrans += segs;
        o.retrans = 1;
        if (Seq(d.una) >= end && (d.flags & dflag::kAck)) {  // its ACK already went by: pseudo-congestion
          dc.spurious += segs;
          o.spurious = 1;
        }
        if (mon_rtt_karn(d, dw, dc, seq.raw(), top.raw(), s.opts, now_us)) {  // Karn: the timed segments resent are ambiguous now
          ++dc.karn_skipped;
          o.karn_skip = 1;
        }
        // Episodes: a head retransmission after RTO-long silence is a
        // timeout (also in recovery, and each backed-off one again); one
        // after duplicate ACKs opens a fast-retransmit recovery.
        const uint32_t silence = d.last_evt ? now_us - d.last_evt : 0;
        if (seq == Seq(d.una) && silence >= uint32_t(d.rto_ms) * 1000u) {
          if (d.phase != kLoss) dc.ssthresh = std::max<uint32_t>(std::max(d.fl_max, d.fl_prev) / 2, 2u * snd_st.mss);
          d.phase = kLoss;
          ++dc.timeouts;
          o.timeout = o.phase_change = 1;
          dc.recover = Seq::max(end, Seq(d.nxt)).raw();
        } else if (d.phase != kRecovery && d.phase != kLoss && d.dupacks > 0) {
          d.phase = kRecovery;
          ++dc.fast_retx;
          dc.ssthresh = std::max<uint32_t>(std::max(d.fl_max, d.fl_prev) / 2, 2u * snd_st.mss);
          dc.recover = d.nxt;
          o.fast_retx = o.phase_change = 1;
        }
      }
      if (end > Seq(d.nxt)) d.nxt = end.raw();
    } else {  // new data
      // Toward a guest receiver: data after an idle period starts its debt.
      if ((d.flags & dflag::kRcvGuest) && d.nxt == d.una) d.last_ack = now_us;
      if (seq > Seq(d.nxt)) {
        ++dc.gaps;
        o.gap = 1;
        if (!(d.flags & dflag::kHole)) {
          d.flags |= dflag::kHole;
          dc.hole_lo = d.nxt;
          dc.hole_hi = s.seq;
        }
      }
      const bool prompt = d.last_evt && gap <= d.thr_up;
      if (d.nxt == d.una && !prompt) dw.gflags |= gflag::kIdleBurst;
      else if (d.flags & dflag::kLastAck) dw.gflags &= static_cast<uint8_t>(~gflag::kIdleBurst);
      if (!(dw.gflags & gflag::kIdleBurst) || d.nxt == d.una)
        d.clocked = static_cast<uint8_t>(d.clocked - d.clocked / 8 + (prompt ? 31 : 0));
      d.nxt = end.raw();
      if (mon_rtt_start(d, dw, end.raw(), len, now_us, mon_eff_mss(snd_st))) o.probe_guest = (d.flags & dflag::kRcvGuest) ? 1 : 0;
    }
    if (!(d.flags & dflag::kLastAck) && d.last_evt) {
      // Data after data, no ACK between: the sender's own spacing per packet
      // (~ its pacing interval when paced; ~0 for a sender that sends what an
      // ACK allows at once). A paced sender sending GSO bursts waits a burst's
      // pacing time, more than this average: for paced senders the hold, and
      // so receive-window time, is only approximate (docs/monitor.md).
      const uint32_t g = std::min<uint32_t>(gap, 1020) / 4;
      d.pace4 = static_cast<uint8_t>((3u * d.pace4 + g + 2) / 4);
    }
    d.flags &= static_cast<uint8_t>(~dflag::kLastAck);
    d.last_evt = now_us;
  }

  // ---- per-direction bookkeeping: windows, phase, limit state ----
  for (uint8_t k = 0; k < 2; ++k) {
    MonDir& d = h.d[k];
    const bool touched = (k == S && len > 0) || (k == R && s.has_ack());
    if (!touched || !(d.flags & dflag::kSeq) || !(d.flags & dflag::kAck)) continue;
    MonDirCold& dc = c.d[k];
    MonDirWarm& dw = c.w[k];
    const uint32_t flight = Seq(d.nxt) > Seq(d.una) ? d.nxt - d.una : 0;
    d.fl_max = std::max(d.fl_max, flight);
    if (now_us - d.win_t >= d.win_len) {
      const uint32_t win_us = now_us - d.win_t;
      dw.rate_kbps = static_cast<uint32_t>(uint64_t(d.una - dw.una_win) * 8000 / std::max<uint32_t>(win_us, 1));
      dw.una_win = d.una;
      dw.max_flight = std::max(dw.max_flight, d.fl_max);
      const bool backlogged = d.clocked >= 128 && d.lim != kLimRwnd;
      if (backlogged && d.fl_prev > 0) {
        const bool growing = uint64_t(d.fl_max) * 4 >= uint64_t(d.fl_prev) * 6;  // >= 1.5x per RTT
        if (d.phase == kPhaseUnknown) {
          d.phase = growing ? kSlowStart : kCongAvoid;
          o.phase_change = 1;
        } else if (d.phase == kSlowStart &&
                   (!growing || (dc.ssthresh && d.fl_max >= dc.ssthresh))) {
          d.phase = kCongAvoid;
          o.phase_change = 1;
        }
      }
      d.fl_prev = d.fl_max;
      d.fl_max = flight;
      d.win_t = now_us;
    }
    const TcpDirState& rcv = conn.d[k ^ 1];
    const uint32_t rwnd = (rcv.flags & dirflag::kWinValid) ? rcv.win : 0xffffffffu;
    // An ACK during a guest sender's silence: what it closes may become guest time.
    const bool sil = !(k == S && len > 0) && d.last_ack &&
                     (d.flags & (dflag::kSndGuest | dflag::kRcvGuest | dflag::kLastAck)) ==
                         (dflag::kSndGuest | dflag::kLastAck);
    const uint8_t next_lim = mon_limit_state(d, rwnd, mon_eff_mss(conn.d[k]));
    const bool data = k == S && len > 0;
    if (sil) {
      const MonDir before = d;
      mon_lim_update(d, dw, dc, next_lim, data, now_us);
      if (d.lim_since != before.lim_since) mon_sil_note(before, d.lim_since, dc, c.sil_8us[k]);
    } else {
      mon_lim_update(d, dw, dc, next_lim, data, now_us);
    }
  }
  return o;
}

}  // namespace vsw::mon
