// Switch for the fused kernels: the CPU kernels of CAME and Adafactor and, in a VCYCLE_WITH_CUDA
// build, the multi-tensor CUDA kernels of CAME, LAMB and Adafactor.
//
// On the CPU, parameters whose fp32 working copy is contiguous take hand-fused loops that read each
// tensor the fewest times the math allows (CAME: four passes per matrix); all other parameters run
// the same math as ATen in-place ops. The two agree to float rounding (tests check it). The switch
// (on by default, process-wide) exists for those tests and for benchmarks; a training run has no
// reason to turn it off.
#pragma once

namespace vcycle::optim {

void set_fused_cpu_kernels(bool enabled);
bool fused_cpu_kernels();

}  // namespace vcycle::optim
