// CPU AttnRes mix.
#include "models/attn_res_mix.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace attnres {

void AttnResMix(const float* const* sources, int n, const float* u, int d, double eps, float* out,
                float* alpha) {
  if (n == 1) {  // softmax of one score is exactly 1: identity
    std::memcpy(out, sources[0], sizeof(float) * d);
    if (alpha) alpha[0] = 1.0f;
    return;
  }
  std::vector<double> score(n);
  for (int j = 0; j < n; ++j) {
    const float* v = sources[j];
    double sq = 0.0, dot = 0.0;
    for (int i = 0; i < d; ++i) {
      sq += static_cast<double>(v[i]) * v[i];
      dot += static_cast<double>(u[i]) * v[i];
    }
    score[j] = dot / std::sqrt(sq / d + eps);  // r_j * (u . v_j); no 1/sqrt(d)
  }
  const double mx = *std::max_element(score.begin(), score.end());
  double sum = 0.0;
  for (double& s : score) sum += (s = std::exp(s - mx));
  for (double& s : score) s /= sum;
  for (int i = 0; i < d; ++i) {
    double acc = 0.0;
    for (int j = 0; j < n; ++j) acc += score[j] * sources[j][i];
    out[i] = static_cast<float>(acc);
  }
  if (alpha) {
    for (int j = 0; j < n; ++j) alpha[j] = static_cast<float>(score[j]);
  }
}

}  // namespace attnres
