// Deprecated forwarding header (vcycle 0.1 layout): include <vcycle/schedules/level_plan.h> instead. Removed in 0.3.
#pragma once
#ifndef VCYCLE_NO_DEPRECATED_HEADER_WARNINGS
#pragma message("<vcycle/level_transition.h> is deprecated: include <vcycle/schedules/level_plan.h>")
#endif
#include "vcycle/schedules/level_plan.h"
