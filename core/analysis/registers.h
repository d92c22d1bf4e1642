#pragma once
// High-norm outlier tokens, register neurons and test-time registers, as the reference defines them
// (Jiang, Dravid, Efros, Gandelsman, "Vision Transformers Don't Need Trained Registers", NeurIPS
// 2025; code nickjiang2378/test-time-registers: shared/algorithms.py find_register_neurons,
// shared/hook_fn.py activate_on_registers, configs/*.yaml). Plain ViTs with a class token.
//
//   RegisterFindParams p = registerFindDefaults(model);           // its config for the family
//   auto ranked = findRegisterNeurons(model, paths, p, job);      // every (layer, neuron), best first
//   TestTimeRegisterParams t = testTimeRegisterDefaults(model);   // K = 1, top_k, highest_layer
//   applyTestTimeRegisters(model, t, ranked);                     // encode / decompose / heatmap now
//                                                                 // run the intervened model
#include "job.h"
#include "model/model.h"

#include <functional>
#include <string>
#include <vector>

namespace vitscope {

// find_register_neurons' arguments (names as the reference's; the defaults are its function's, the
// threshold and detection layer its config's for the family: registerFindDefaults).
struct RegisterFindParams {
    double registerNormThreshold = 30;  // a token is an outlier where its norm is > this
    int detectOutliersLayer = -1;       // block whose output's token norms are read (negative: from the end)
    int processedImageCnt = 500;        // images read (the first ones in listImages order)
    bool applySparsityFilter = false;
    double sparsityFracThreshold = 0.5;        // a neuron is sparse where >= this fraction of tokens...
    double sparsityActivationThreshold = 0.5;  // ...have activations below this
    int batch = 8;                             // images per forward (vitscope's; the reference runs one at a time)
    void validate(const Model& model) const;   // InputError naming the field's flag
    std::string toString() const;
    int detectionLayer(int layers) const;  // the block index detectOutliersLayer names
};

// The reference's configs: OpenAI / OpenCLIP ViT-B/16 (threshold 30, layer -1, highest_layer 5,
// top_k 10) for every model but DINOv2, which gets its DINOv2-L config (150, -2, 17, 50).
RegisterFindParams registerFindDefaults(const Model& model);

struct RegisterNeuron {
    int layer = 0, neuron = 0;
    double score = 0;  // mean over the images with outliers of mean |activation| at the outliers
};

// The per-image scores find_register_neurons averages, image by image.
class RegisterNeuronScores {
public:
    RegisterNeuronScores(int layers, int neurons, const RegisterFindParams& params);
    // One image: the detection block's output [N, D] and every block's MLP activations L x [N, M].
    // Returns false (and counts nothing) when no token's norm exceeds the threshold.
    bool add(const at::Tensor& detectionOutput, const std::vector<at::Tensor>& hidden);
    int images() const { return m_images; }
    // Every (layer, neuron) by mean score, best first (ties: lower layer, then lower neuron, first).
    // InputError naming --register-norm-threshold when no image had outliers (the reference asserts).
    std::vector<RegisterNeuron> ranked() const;

private:
    RegisterFindParams m_params;
    at::Tensor m_sum;  // [L, M] double
    int m_images = 0;
};

// batch(start, n) -> pixels [n, 3, S, S] of images start.. of `count`.
using PixelBatches = std::function<at::Tensor(int64_t start, int64_t n)>;
std::vector<RegisterNeuron> findRegisterNeurons(const Model& model, int64_t count, const PixelBatches& batch, const RegisterFindParams& params,
                                                const JobContext& job, int* imagesWithOutliers = nullptr);
std::vector<RegisterNeuron> findRegisterNeurons(const Model& model, const std::vector<std::string>& paths, const RegisterFindParams& params,
                                                const JobContext& job, int* imagesWithOutliers = nullptr);

// "layer.neuron" lines, best first (what `registers find` writes); reading checks every entry
// against the model (InputError naming the file and line).
std::string formatRegisterNeurons(const std::vector<RegisterNeuron>& ranked, int limit = 0);
std::vector<RegisterNeuron> readRegisterNeurons(const std::string& path, const Model& model);

const char* registerNormalValuesName(RegisterNormalValues v);
RegisterNormalValues parseRegisterNormalValues(const std::string& name);  // InputError for others

// The intervention (the notebook's filter_layers(highest_layer) then the top_k first entries).
struct TestTimeRegisterParams {
    int count = 1;          // --test-time-registers K (the notebook's num_registers = 1)
    int topK = 10;          // --register-top-k
    int highestLayer = 5;   // --register-highest-layer: entries of later layers are skipped (-1: none)
    double scale = 1.0;     // --register-scale
    RegisterNormalValues normalValues = RegisterNormalValues::Zero;  // --register-normal-values
    void validate(const Model& model) const;
    std::string toString() const;
};
TestTimeRegisterParams testTimeRegisterDefaults(const Model& model);

// The neurons the intervention uses: ranked entries of layers <= highestLayer, the first topK.
std::vector<RegisterNeuron> selectRegisterNeurons(const std::vector<RegisterNeuron>& ranked, const TestTimeRegisterParams& params);
// Makes `model` the test-time-register model: K zero tokens after the patches, and at the chosen
// neurons of each block the reference's activate_on_registers. Every forward of the model
// (encodeImages, decomposeImages, traceImages, heatmaps) then runs it; the decomposition's
// per-token terms have the K registers as their last tokens. Returns the neurons used.
std::vector<RegisterNeuron> applyTestTimeRegisters(Model& model, const TestTimeRegisterParams& params, const std::vector<RegisterNeuron>& ranked);

// Diagnostics of one image: every block output's token norms and where the class token's
// attention goes.
struct TokenNormReport {
    at::Tensor norms;         // [L, N] norm of every token of each block's output
    at::Tensor outliers;      // [N] bool: norm > threshold at the detection block (the reference's register locations)
    at::Tensor clsShare;      // [L] per block, the class token's attention (mean over heads) on the outlier tokens
    at::Tensor maxOverMedian; // [L] max / median of the patch tokens' norms
    int gridH = 0, gridW = 0, prefix = 0, suffix = 0;
};
TokenNormReport tokenNorms(const Model& model, const at::Tensor& pixels, const RegisterFindParams& params);

// The share of a patch map's positive mass that sits on the outlier patches (mask [gh * gw] bool,
// e.g. TokenNormReport::outliers without the prefix and suffix tokens); 0 when the map has no
// positive mass. A heatmap warns when it is over one half.
double outlierMassShare(const at::Tensor& patchMap, const at::Tensor& outlierPatches);

}  // namespace vitscope
