// Deprecated forwarding header (vcycle 0.1 layout): include <vcycle/core/metrics.h> instead. Removed in 0.3.
#pragma once
#ifndef VCYCLE_NO_DEPRECATED_HEADER_WARNINGS
#pragma message("<vcycle/metrics.h> is deprecated: include <vcycle/core/metrics.h>")
#endif
#include "vcycle/core/metrics.h"
