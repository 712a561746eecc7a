// Deprecated forwarding header (vcycle 0.1 layout): include <vcycle/schedules/finetune.h> instead. Removed in 0.3.
#pragma once
#ifndef VCYCLE_NO_DEPRECATED_HEADER_WARNINGS
#pragma message("<vcycle/finetune.h> is deprecated: include <vcycle/schedules/finetune.h>")
#endif
#include "vcycle/config/finetune_config.h"
#include "vcycle/schedules/finetune.h"
