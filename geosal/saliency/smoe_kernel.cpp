// SMOE Scale (Eq. 2 of Mundhenk et al.) over the channel axis, one pass, no temporaries.
//
//   out[b, y, x] = mu * (log2(mu) - mean_c log2(v_c)),  v_c = max(x[b, c, y, x], 0) + 1e-6,  mu = mean_c v_c
//
// Built at run time by geosal.saliency.native with -O3 -march=native -ffast-math
// (so the inner loops vectorise; inputs must be finite). log2 comes from the
// float's exponent bits plus a degree-8 polynomial of the mantissa (error < 5e-8).
// Sums run in float32 over blocks of 16 channels and in float64 across blocks.
#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace {

constexpr int64_t kChunk = 1024;   // spatial positions per task (NCHW): accumulators stay in L1
constexpr int64_t kBlock = 16;     // channels summed in float32 before the float64 accumulation
constexpr float kEpsilon = 1e-6f;

inline float fast_log2(float v) {
    int32_t bits;
    std::memcpy(&bits, &v, 4);
    const float exponent = static_cast<float>((bits >> 23) - 127);
    const int32_t mantissa_bits = (bits & 0x7FFFFF) | 0x3F800000;
    float m;
    std::memcpy(&m, &mantissa_bits, 4);
    const float t = m - 1.0f;
    float p = -0.008874803562772834f;
    p = p * t + 0.050278108076799125f;
    p = p * t - 0.1345355615161275f;
    p = p * t + 0.2392331147000649f;
    p = p * t - 0.3459969059282805f;
    p = p * t + 0.4783238506425779f;
    p = p * t - 0.7211146690513038f;
    p = p * t + 1.442686782158098f;
    p = p * t + 4.8764396409772814e-08f;
    return exponent + p;
}

inline float finish(double sum, double sum_log2, int64_t channels) {
    const double mu = sum / channels;
    const double value = mu * (std::log2(mu) - sum_log2 / channels);
    return value > 0.0 ? static_cast<float>(value) : 0.0f;
}

// x: [B, C, H, W] contiguous. Each task owns kChunk positions of one image and
// streams the C planes over them: contiguous reads, accumulators in L1.
void smoe_nchw(const float* x, float* out, int64_t batch, int64_t channels, int64_t positions) {
    const int64_t chunks = (positions + kChunk - 1) / kChunk;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t b = 0; b < batch; ++b) {
        for (int64_t k = 0; k < chunks; ++k) {
            const int64_t start = k * kChunk;
            const int64_t n = std::min(kChunk, positions - start);
            alignas(64) float sum[kChunk], sum_log2[kChunk];
            alignas(64) double total[kChunk], total_log2[kChunk];
            std::fill(total, total + n, 0.0);
            std::fill(total_log2, total_log2 + n, 0.0);
            for (int64_t c0 = 0; c0 < channels; c0 += kBlock) {
                std::fill(sum, sum + n, 0.0f);
                std::fill(sum_log2, sum_log2 + n, 0.0f);
                const int64_t c1 = std::min(channels, c0 + kBlock);
                for (int64_t c = c0; c < c1; ++c) {
                    const float* plane = x + (b * channels + c) * positions + start;
                    for (int64_t i = 0; i < n; ++i) {
                        const float v = std::max(plane[i], 0.0f) + kEpsilon;
                        sum[i] += v;
                        sum_log2[i] += fast_log2(v);
                    }
                }
                for (int64_t i = 0; i < n; ++i) {
                    total[i] += sum[i];
                    total_log2[i] += sum_log2[i];
                }
            }
            float* target = out + b * positions + start;
            for (int64_t i = 0; i < n; ++i) target[i] = finish(total[i], total_log2[i], channels);
        }
    }
}

// x: [B, H, W, C] contiguous (channels last). Each position's C values are contiguous.
void smoe_nhwc(const float* x, float* out, int64_t locations, int64_t channels) {
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < locations; ++p) {
        const float* column = x + p * channels;
        double total = 0.0, total_log2 = 0.0;
        for (int64_t c0 = 0; c0 < channels; c0 += kBlock) {
            const int64_t c1 = std::min(channels, c0 + kBlock);
            float sum = 0.0f, sum_log2 = 0.0f;
            for (int64_t c = c0; c < c1; ++c) {
                const float v = std::max(column[c], 0.0f) + kEpsilon;
                sum += v;
                sum_log2 += fast_log2(v);
            }
            total += sum;
            total_log2 += sum_log2;
        }
        out[p] = finish(total, total_log2, channels);
    }
}

}  // namespace

torch::Tensor smoe_scale(torch::Tensor x) {
    TORCH_CHECK(x.dim() == 4 && x.scalar_type() == torch::kFloat32 && x.device().is_cpu(),
                "smoe_scale kernel takes a float32 CPU tensor [B, C, H, W]");
    const int64_t batch = x.size(0), channels = x.size(1), height = x.size(2), width = x.size(3);
    auto out = torch::empty({batch, height, width}, x.options().memory_format(torch::MemoryFormat::Contiguous));
    if (x.is_contiguous()) {
        smoe_nchw(x.data_ptr<float>(), out.data_ptr<float>(), batch, channels, height * width);
    } else {
        TORCH_CHECK(x.is_contiguous(torch::MemoryFormat::ChannelsLast), "smoe_scale kernel needs NCHW or channels-last memory");
        smoe_nhwc(x.data_ptr<float>(), out.data_ptr<float>(), batch * height * width, channels);
    }
    return out;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("smoe_scale", &smoe_scale, "SMOE Scale over channels"); }
