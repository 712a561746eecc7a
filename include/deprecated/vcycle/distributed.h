// Deprecated forwarding header (vcycle 0.1 layout): include <vcycle/core/distributed.h> instead. Removed in 0.3.
#pragma once
#ifndef VCYCLE_NO_DEPRECATED_HEADER_WARNINGS
#pragma message("<vcycle/distributed.h> is deprecated: include <vcycle/core/distributed.h>")
#endif
#include "vcycle/core/distributed.h"
