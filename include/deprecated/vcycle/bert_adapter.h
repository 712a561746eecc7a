// Deprecated forwarding header (vcycle 0.1 layout): include <vcycle/models/bert/adapter.h> instead. Removed in 0.3.
#pragma once
#ifndef VCYCLE_NO_DEPRECATED_HEADER_WARNINGS
#pragma message("<vcycle/bert_adapter.h> is deprecated: include <vcycle/models/bert/adapter.h>")
#endif
#include "vcycle/models/bert/adapter.h"
