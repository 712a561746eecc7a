// Deprecated forwarding header (vcycle 0.1 layout): include <vcycle/core/checkpoint.h> instead. Removed in 0.3.
#pragma once
#ifndef VCYCLE_NO_DEPRECATED_HEADER_WARNINGS
#pragma message("<vcycle/checkpoint.h> is deprecated: include <vcycle/core/checkpoint.h>")
#endif
#include "vcycle/core/checkpoint.h"
