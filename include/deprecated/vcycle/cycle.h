// Deprecated forwarding header (vcycle 0.1 layout): include <vcycle/schedules/cycle_runner.h> instead. Removed in 0.3.
#pragma once
#ifndef VCYCLE_NO_DEPRECATED_HEADER_WARNINGS
#pragma message("<vcycle/cycle.h> is deprecated: include <vcycle/schedules/cycle_runner.h>")
#endif
#include "vcycle/schedules/cycle_runner.h"
