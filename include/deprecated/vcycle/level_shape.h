// Deprecated forwarding header (vcycle 0.1 layout): include <vcycle/operators/level_shape.h> instead. Removed in 0.3.
#pragma once
#ifndef VCYCLE_NO_DEPRECATED_HEADER_WARNINGS
#pragma message("<vcycle/level_shape.h> is deprecated: include <vcycle/operators/level_shape.h>")
#endif
#include "vcycle/operators/level_shape.h"
