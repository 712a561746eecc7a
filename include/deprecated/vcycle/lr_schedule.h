// Deprecated forwarding header (vcycle 0.1 layout): include <vcycle/schedules/lr_schedule.h> instead. Removed in 0.3.
#pragma once
#ifndef VCYCLE_NO_DEPRECATED_HEADER_WARNINGS
#pragma message("<vcycle/lr_schedule.h> is deprecated: include <vcycle/schedules/lr_schedule.h>")
#endif
#include "vcycle/schedules/lr_schedule.h"
