// Rotary position embedding frequencies (plain and Llama-3 scaled), in the Hugging Face
// "rotate half" convention: dimension i pairs with i + head_dim/2. Computed in double once per
// model; the CPU applies them directly, the GPU uploads a cos/sin table.
#pragma once

#include <vector>

#include "models/model_config.h"

namespace attnres {

// [head_dim / 2] inverse frequencies, with rope_scaling applied.
std::vector<double> RopeInverseFrequencies(const ModelConfig& config);

// Rotates one head vector x [head_dim] in place for position `pos`.
void ApplyRope(const std::vector<double>& inv_freq, int pos, float* x, int head_dim);

}  // namespace attnres
