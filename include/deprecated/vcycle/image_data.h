// Deprecated forwarding header (vcycle 0.1 layout): include <vcycle/data/image_data.h> instead. Removed in 0.3.
#pragma once
#ifndef VCYCLE_NO_DEPRECATED_HEADER_WARNINGS
#pragma message("<vcycle/image_data.h> is deprecated: include <vcycle/data/image_data.h>")
#endif
#include "vcycle/data/image_data.h"
