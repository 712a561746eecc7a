// Deprecated forwarding header (vcycle 0.1 layout): include <vcycle/core/tensor_map.h> instead. Removed in 0.3.
#pragma once
#ifndef VCYCLE_NO_DEPRECATED_HEADER_WARNINGS
#pragma message("<vcycle/tensor_map.h> is deprecated: include <vcycle/core/tensor_map.h>")
#endif
#include "vcycle/core/tensor_map.h"
