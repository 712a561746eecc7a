// Deprecated forwarding header (vcycle 0.1 layout): include <vcycle/models/vit/vit.h> instead. Removed in 0.3.
#pragma once
#ifndef VCYCLE_NO_DEPRECATED_HEADER_WARNINGS
#pragma message("<vcycle/model/vit.h> is deprecated: include <vcycle/models/vit/vit.h>")
#endif
#include "vcycle/models/vit/vit.h"
