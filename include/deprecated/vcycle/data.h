// Deprecated forwarding header (vcycle 0.1 layout): include <vcycle/data/token_data.h> instead. Removed in 0.3.
#pragma once
#ifndef VCYCLE_NO_DEPRECATED_HEADER_WARNINGS
#pragma message("<vcycle/data.h> is deprecated: include <vcycle/data/token_data.h>")
#endif
#include "vcycle/data/token_data.h"
