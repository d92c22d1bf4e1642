#pragma once
// The SAE trainer's state and steps (analysis/sae_train.h describes the objectives): prepared
// rows, the four parameters, Adam's moments (torch's Adam / AdamW update, written out so the
// checkpoint is one safetensors file), the dead-latent counters and the step.
#include "analysis/sae.h"
#include "analysis/sae_train.h"

#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace vitscope {

// ReLU of the k largest entries of each row of pre [B, W], zeros elsewhere.
at::Tensor topkRelu(const at::Tensor& pre, int k);
// A permutation of 0..n-1 from (seed, epoch) alone (splitmix64 + Fisher-Yates), int64.
at::Tensor epochPermutation(int64_t n, uint64_t seed, int epoch);
// x -> (x - mean) / (unbiased std + 1e-5) per row; mean and std [N, 1] returned when asked.
at::Tensor layerNormRows(const at::Tensor& x, at::Tensor* mean = nullptr, at::Tensor* std = nullptr);

class SaeTrainer {
public:
    SaeTrainer(const at::Tensor& rows, const SaeTrainParams& params);
    // Loads params.out + ".ckpt" when it exists and holds this run's settings and data; the step
    // it reached (0 otherwise). A checkpoint of other settings is refused (InputError).
    int64_t resume();
    int64_t step() const { return m_step; }
    int64_t stepsPerEpoch() const;
    // One optimiser step on the rows `indices` (int64) of the prepared data; the loss.
    double trainStep(const at::Tensor& indices, int epoch);
    void saveCheckpoint() const;
    void removeCheckpoint() const;
    // The trained SAE as its file holds it (standardisation folded in, the metadata recorded).
    SparseAutoencoder sae() const;
    void writeFile() const;  // writeSae to params.out
    // Over all rows, through the file's encoding (encodeSae, decodeSae): variance unexplained, dead latents.
    void evaluate(double* fvu, int64_t* dead) const;

private:
    void prepareData();
    void initTopK();
    void initMatryoshka();
    at::Tensor topkForward(const at::Tensor& x, at::Tensor* pre, bool updateStats);
    at::Tensor lossTopK(const at::Tensor& x);
    void normaliseDecoder();
    void clipGradients();
    void adamStep(double lr);
    double learningRate(int epoch) const;
    std::string checkpointKey() const;

    SaeTrainParams m_p;
    at::Tensor m_rows;                          // as given [N, D]
    at::Tensor m_x;                             // prepared [N, D]: layer-normed, standardised (matryoshka)
    at::Tensor m_mean;                          // matryoshka's mean [D] (zeros for topk)
    double m_scale = 1.0;                       // matryoshka's scaling factor
    double m_mseScale = 1.0;                    // topk: 1 / mean((mean(x) - x)^2)
    at::Tensor m_wEnc, m_bEnc, m_wDec, m_bPre;  // [D, W], [W], [W, D], [D]
    std::vector<at::Tensor> m_expAvg, m_expAvgSq;
    at::Tensor m_lastActive;  // int64 [W]: steps since each latent last fired (topk)
    int64_t m_step = 0;
    uint64_t m_dataHash = 0;
};

}  // namespace vitscope
