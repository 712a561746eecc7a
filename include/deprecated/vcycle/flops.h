// Deprecated forwarding header (vcycle 0.1 layout): include <vcycle/core/flops.h> instead. Removed in 0.3.
#pragma once
#ifndef VCYCLE_NO_DEPRECATED_HEADER_WARNINGS
#pragma message("<vcycle/flops.h> is deprecated: include <vcycle/core/flops.h>")
#endif
#include "vcycle/core/flops.h"
