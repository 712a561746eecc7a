// The learning rate is a pure function of the phase and the step, so resuming needs only the step.
#pragma once

#include <cstdint>

#include "vcycle/config/run_config.h"

namespace vcycle {

// Linear warmup from lr/warmup to lr over `warmup` steps, then constant, or cosine decay from lr to
// lr·min_lr_ratio at the last step of the phase. `step` counts from 0.
double lr_at(const PhaseConfig& phase, int64_t step);

}  // namespace vcycle
