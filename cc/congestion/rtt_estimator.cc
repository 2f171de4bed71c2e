#include "cc/congestion/rtt_estimator.h"

#include <algorithm>
#include <cmath>

namespace vsw::congestion {

namespace {
constexpr double kAlpha = 1.0 / 8;  // sec 2.3
constexpr double kBeta = 1.0 / 4;
constexpr double kK = 4;
}  // namespace

RttEstimator::RttEstimator(const RttConfig& cfg)
    : granularity_us_(cfg.clock_granularity_us),
      rto_min_us_(cfg.rto_min_us),
      rto_max_us_(std::max(cfg.rto_max_us, cfg.rto_min_us)) {
  rto_us_ = std::clamp(cfg.rto_initial_us, rto_min_us_, rto_max_us_);
}

uint32_t RttEstimator::clamp_rto(double rto_us) const {
  // Round up: an RTO a fraction of a µs short could fire before the ACK.
  const double up = std::ceil(rto_us);
  return static_cast<uint32_t>(std::clamp(up, static_cast<double>(rto_min_us_), static_cast<double>(rto_max_us_)));
}

void RttEstimator::on_sample(uint32_t rtt_us) {
  const double r = rtt_us;
  if (!has_sample_) {
    // Sec 2.2: SRTT = R, RTTVAR = R/2.
    srtt_us_ = r;
    rttvar_us_ = r / 2;
    has_sample_ = true;
  } else {
    // Sec 2.3: RTTVAR first, with the SRTT from before this sample.
    rttvar_us_ = (1 - kBeta) * rttvar_us_ + kBeta * std::fabs(srtt_us_ - r);
    srtt_us_ = (1 - kAlpha) * srtt_us_ + kAlpha * r;
  }
  rto_us_ = clamp_rto(srtt_us_ + std::max(static_cast<double>(granularity_us_), kK * rttvar_us_));
  backoffs_ = 0;
}

void RttEstimator::on_timeout() {
  rto_us_ = static_cast<uint32_t>(std::min<uint64_t>(uint64_t{rto_us_} * 2, rto_max_us_));
  if (backoffs_ < UINT16_MAX) ++backoffs_;
}

}  // namespace vsw::congestion
