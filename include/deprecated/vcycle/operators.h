// Deprecated forwarding header (vcycle 0.1 layout): include <vcycle/operators/operators.h> instead. Removed in 0.3.
#pragma once
#ifndef VCYCLE_NO_DEPRECATED_HEADER_WARNINGS
#pragma message("<vcycle/operators.h> is deprecated: include <vcycle/operators/operators.h>")
#endif
#include "vcycle/operators/operators.h"
