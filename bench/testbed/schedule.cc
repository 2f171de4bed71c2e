#include "bench/testbed/schedule.h"

#include <algorithm>
#include <stdexcept>

namespace tb {

ConsolidationModel::ConsolidationModel(unsigned vms_per_core, double slice_ms, double load, uint64_t seed)
    : n_(vms_per_core), slice_us_(static_cast<uint64_t>(slice_ms * 1000.0)), load_(load), rng_(seed) {
  if (n_ < 1 || slice_us_ == 0 || load_ < 0 || load_ > 1) throw std::invalid_argument("consolidation model");
}

// Uniform [0,1) from the top 53 bits: unlike std::uniform_real_distribution
// its sequence is fixed by the standard engine alone, so a seed means the
// same schedule with every standard library.
bool ConsolidationModel::draw(double p) { return static_cast<double>(rng_() >> 11) * 0x1.0p-53 < p; }

Interval ConsolidationModel::next() {
  if (have_off_) {
    have_off_ = false;
    t_ = off_.end_us;
    return off_;
  }
  const uint64_t start = t_;
  if (n_ == 1 || load_ == 0) return Interval{true, start, UINT64_MAX / 2};  // never descheduled
  uint64_t end = start;
  for (;;) {  // terminates: load > 0, so some draw succeeds
    end += slice_us_;  // the guest's own slice
    unsigned busy = 0;
    for (unsigned v = 1; v < n_; ++v) busy += draw(load_) ? 1 : 0;
    if (busy > 0) {
      off_ = Interval{false, end, end + busy * slice_us_};
      have_off_ = true;
      break;
    }
  }
  t_ = end;
  return Interval{true, start, end};
}

double ConsolidationModel::expected_on_fraction() const { return 1.0 / (1.0 + (n_ - 1) * load_); }

ScheduleStats summarize(const std::vector<Interval>& iv, uint64_t horizon_us) {
  ScheduleStats s;
  std::vector<double> offs;
  uint64_t on = 0, total = 0;
  for (const auto& i : iv) {
    if (i.start_us >= horizon_us) break;
    const uint64_t e = std::min(i.end_us, horizon_us);
    total += e - i.start_us;
    if (i.on) on += e - i.start_us;
    // Only complete off periods count for the distribution (one cut by the
    // horizon, e.g. at SIGTERM, ends exactly there and is left out).
    else if (i.end_us < horizon_us && i.end_us > i.start_us)
      offs.push_back(static_cast<double>(i.end_us - i.start_us) / 1000.0);
  }
  s.total_ms = total / 1000.0;
  s.on_ms = on / 1000.0;
  s.on_fraction = total ? static_cast<double>(on) / total : 0;
  s.off_count = static_cast<unsigned>(offs.size());
  if (!offs.empty()) {
    std::sort(offs.begin(), offs.end());
    const size_t m = offs.size() / 2;
    s.off_median_ms = offs.size() % 2 ? offs[m] : (offs[m - 1] + offs[m]) / 2;
    double sum = 0;
    for (double o : offs) sum += o;
    s.off_mean_ms = sum / offs.size();
    s.off_max_ms = offs.back();
  }
  return s;
}

}  // namespace tb
