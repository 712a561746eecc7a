// Deprecated forwarding header (vcycle 0.1 layout): include <vcycle/schedules/experiment.h> instead. Removed in 0.3.
#pragma once
#ifndef VCYCLE_NO_DEPRECATED_HEADER_WARNINGS
#pragma message("<vcycle/experiment.h> is deprecated: include <vcycle/schedules/experiment.h>")
#endif
#include "vcycle/schedules/experiment.h"
