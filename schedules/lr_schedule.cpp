// LR schedule; see include/vcycle/schedules/lr_schedule.h.
#include "vcycle/schedules/lr_schedule.h"

#include <algorithm>
#include <cmath>

namespace vcycle {

double lr_at(const PhaseConfig& p, int64_t step) {
  if (step < p.warmup) return p.lr * static_cast<double>(step + 1) / static_cast<double>(p.warmup);
  if (p.schedule == LrSchedule::constant) return p.lr;
  const int64_t decay_steps = std::max<int64_t>(1, p.steps - p.warmup - 1);
  const double progress = std::min(1.0, static_cast<double>(step - p.warmup) / static_cast<double>(decay_steps));
  const double min_lr = p.lr * p.min_lr_ratio;
  return min_lr + 0.5 * (p.lr - min_lr) * (1.0 + std::cos(M_PI * progress));
}

}  // namespace vcycle
