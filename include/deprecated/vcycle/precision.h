// Deprecated forwarding header (vcycle 0.1 layout): include <vcycle/core/precision.h> instead. Removed in 0.3.
#pragma once
#ifndef VCYCLE_NO_DEPRECATED_HEADER_WARNINGS
#pragma message("<vcycle/precision.h> is deprecated: include <vcycle/core/precision.h>")
#endif
#include "vcycle/core/precision.h"
