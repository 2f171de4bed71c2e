// A scripted sender for the congestion tests: keeps snd_una, snd_nxt and a
// clock, and turns "ack N bytes", "dup ACK", "loss", "ECE", "RTO" into the
// ops calls a stage would make.
#pragma once
#include "cc/congestion/cc_ops.h"

namespace vsw::congestion::test {

inline constexpr uint32_t kMss = 1000;

inline CcConfig config(uint32_t initial_window = 0, uint32_t initial_ssthresh = kInfiniteSsthresh) {
  CcConfig c;
  c.mss = kMss;
  c.initial_window = initial_window;
  c.initial_ssthresh = initial_ssthresh;
  c.snd_una = 0;
  return c;
}

struct Trace {
  CcState cc;
  uint32_t snd_una;
  uint32_t snd_nxt;
  uint64_t now_us = 1'000'000;
  uint32_t srtt_us = 100'000;

  Trace(const CcOps& ops, const CcConfig& cfg) : snd_una(cfg.snd_una), snd_nxt(cfg.snd_una) { cc.init(ops, cfg); }

  uint32_t flight() const { return snd_nxt - snd_una; }
  void send(uint32_t bytes) { snd_nxt += bytes; }
  void send_to_cwnd() {
    if (flight() < cc.cwnd()) snd_nxt = snd_una + cc.cwnd();
  }

  AckOutcome ack(uint32_t bytes, bool ece = false) { return ack_marked(bytes, ece, ece ? bytes : 0); }
  AckOutcome ack_marked(uint32_t bytes, bool ece, uint32_t marked) {
    snd_una += bytes;
    if (seq_after(snd_una, snd_nxt)) snd_nxt = snd_una;
    AckSample a = sample(ece);
    a.bytes_acked = bytes;
    a.bytes_marked = marked;
    return cc.on_ack(a);
  }
  // n ACKs of one MSS each.
  void ack_segments(int n) {
    for (int i = 0; i < n; ++i) ack(kMss);
  }
  AckOutcome dup_ack(bool ece = false) {
    AckSample a = sample(ece);
    a.dup_ack = true;
    return cc.on_ack(a);
  }
  // An ACK of the sender's current state; the caller adds what it acknowledges.
  AckSample sample(bool ece) const {
    AckSample a;
    a.now_us = now_us;
    a.ack_seq = snd_una;
    a.snd_nxt = snd_nxt;
    a.flight_bytes = flight();
    a.srtt_us = srtt_us;
    a.ece = ece;
    return a;
  }
  bool event(CongestionKind kind) {
    return cc.on_congestion_event({kind, now_us, snd_una, snd_nxt, flight()});
  }
  bool loss() { return event(CongestionKind::kLoss); }
  bool ecn() { return event(CongestionKind::kEcnEcho); }
  // Three duplicate ACKs, the third one triggering the loss event.
  bool three_dup_acks() {
    dup_ack();
    dup_ack();
    dup_ack();
    return loss();
  }
  void timeout() { cc.on_timeout({now_us, snd_nxt, flight()}); }
  void timeout_with_flight(uint32_t flight_bytes) { cc.on_timeout({now_us, snd_nxt, flight_bytes}); }
};

}  // namespace vsw::congestion::test
