// RFC 6298 RTT / RTO estimator shared by every algorithm and stage.
// RTO min and max are parameters: vCC's point is an RTOmin far below 1 s.
#pragma once
#include <cstdint>

namespace vsw::congestion {

struct RttConfig {
  uint32_t clock_granularity_us = 100;    // G: the timer's tick (a timer cannot fire sooner)
  uint32_t rto_initial_us = 1'000'000;    // sec 2.1: 1 s before the first sample
  uint32_t rto_min_us = 1'000'000;        // sec 2.4: rounded up to 1 s (SHOULD)
  uint32_t rto_max_us = 60'000'000;       // sec 2.5: a maximum of at least 60 s (MAY)
};

class RttEstimator {
 public:
  explicit RttEstimator(const RttConfig& cfg = {});

  // A valid measurement. Karn (sec 3): the caller never passes the RTT of a
  // retransmitted segment. A new sample also drops any backoff (sec 5).
  void on_sample(uint32_t rtt_us);
  // Sec 5.5: the retransmission timer expired; double RTO up to the maximum.
  void on_timeout();

  uint32_t rto_us() const { return rto_us_; }
  uint32_t srtt_us() const { return static_cast<uint32_t>(srtt_us_ + 0.5); }
  uint32_t rttvar_us() const { return static_cast<uint32_t>(rttvar_us_ + 0.5); }
  bool has_sample() const { return has_sample_; }
  uint32_t backoffs() const { return backoffs_; }

 private:
  uint32_t clamp_rto(double rto_us) const;

  double srtt_us_ = 0;
  double rttvar_us_ = 0;
  uint32_t rto_us_;
  uint32_t granularity_us_;
  uint32_t rto_min_us_;
  uint32_t rto_max_us_;
  uint16_t backoffs_ = 0;
  bool has_sample_ = false;
};

}  // namespace vsw::congestion
