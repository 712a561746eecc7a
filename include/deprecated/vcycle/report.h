// Deprecated forwarding header (vcycle 0.1 layout): include <vcycle/schedules/report.h> instead. Removed in 0.3.
#pragma once
#ifndef VCYCLE_NO_DEPRECATED_HEADER_WARNINGS
#pragma message("<vcycle/report.h> is deprecated: include <vcycle/schedules/report.h>")
#endif
#include "vcycle/schedules/report.h"
