#pragma once
// In-memory ViT / CLIP models: plain structs of tensors that every checkpoint layout is mapped
// onto, so that one forward pass and one decomposition serve every family.
//
// Shapes use fixed letters: B batch, L layer, H head, N token (0 = class token), D width,
// E output / embedding dim, P pixels, T texts, S text positions.
#include "model/precision.h"

#include <ATen/ATen.h>

#include <array>
#include <memory>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace vitscope {

enum class Activation { Gelu, QuickGelu, GeluTanh };  // GeluTanh: tanh-approximated GELU (SigLIP)

// Test-time registers (analysis/registers.h; Jiang et al., "Vision Transformers Don't Need Trained
// Registers"): what the patch tokens' activations of a register neuron become (the reference's
// activate_on_registers, normal_values): zero, their mean over the patches, only the values above
// mean + std replaced by the mean, or kept as they are.
enum class RegisterNormalValues { Zero, Mean, OnlyOutliers, Same };
struct TestTimeRegisters {
    int count = 0;       // K zero tokens appended after every other token (0: off)
    double scale = 1.0;  // the registers' activation = scale * sign_max over tokens and neurons
    RegisterNormalValues normalValues = RegisterNormalValues::Zero;
};

enum class ExactRows { None, ClassToken, Every };

struct Block {
    at::Tensor ln1W, ln1B;     // [D]
    at::Tensor qkvW, qkvB;     // [3D, D], [3D] (q, k, v stacked)
    at::Tensor outW, outB;     // [D, D], [D]
    at::Tensor ln2W, ln2B;     // [D]
    at::Tensor fc1W, fc1B;     // [M, D], [M]
    at::Tensor fc2W, fc2B;     // [D, M], [D]
    at::Tensor ls1, ls2;       // LayerScale gammas [D]; undefined when the model has none
    at::Tensor registerNeurons;  // int64 [k]: MLP neurons moved onto the test-time registers; undefined: none
    // Reduced precision (model/precision.h): the matmul weights and biases in bf16 / fp16, the fp32
    // slots above then holding the same rounded values (the decomposition's maps read those).
    // Undefined in fp32 and tf32.
    at::Tensor qkvWr, qkvBr, outWr, outBr, fc1Wr, fc1Br, fc2Wr, fc2Br;
    bool reduced() const { return qkvWr.defined(); }
};

struct Encoder {
    std::vector<Block> blocks;
    int heads = 0;
    Activation activation = Activation::Gelu;
    double eps = 1e-6;
    TestTimeRegisters testTimeRegisters;  // vision encoders only; the blocks' registerNeurons say where
    // Reduced precision: the attention products (q k^T, A v) in the blocks' reduced type too, the
    // softmax in fp32 (model/precision.h); false: q, k, v go to fp32 for the attention.
    bool reducedAttention = false;
    // Reduced precision: the tokens whose attention output is formed in fp32 from the fp32
    // probabilities and the rounded values, and projected in fp32 through the rounded weights, so
    // that the per-head terms sum to it exactly: the class token (plain ViTs), every token (the
    // decomposition reads every token: attention-pooled and windowed towers) or none (texts).
    ExactRows exactRows = ExactRows::None;
};

// Multi-head attention pooling (SigLIP's "MAP" head): a learned probe attends over every token
// after the final norm, then a residual MLP: out = a + MLP(LN(a)), a = attention(probe, tokens).
struct AttentionPool {
    at::Tensor probe;               // [D]
    at::Tensor qkvW, qkvB;          // [3D, D], [3D]: q applies to the probe, k and v to the tokens
    at::Tensor outW, outB;          // [D, D], [D]
    at::Tensor lnW, lnB;            // [D]
    at::Tensor fc1W, fc1B;          // [M, D], [M]
    at::Tensor fc2W, fc2B;          // [D, M], [D]
    int heads = 0;
    double eps = 1e-6;
    bool defined() const { return probe.defined(); }
};

// Swin (hierarchical): stages of (shifted-)window attention blocks. Every stage after the first
// starts with a patch merging: the 2x2 neighbours' features concatenated in the order
// (row, col) = (0,0), (1,0), (0,1), (1,1), a LayerNorm over the 4C channels and a Linear to the
// stage's width (no bias), which halves the grid.
struct SwinStage {
    int width = 0, heads = 0, depth = 0;
    int firstLayer = 0;                 // index of the stage's first block in VisionTower::encoder.blocks
    at::Tensor mergeNormW, mergeNormB;  // [4 C_{s-1}]; undefined for stage 0
    at::Tensor mergeW;                  // [C_s, 4 C_{s-1}]
};

struct SwinTower {
    int window = 7;                     // window side in tokens (from the relative-position tables)
    std::vector<SwinStage> stages;
    std::vector<at::Tensor> relBias;    // per block [(2w-1)^2, H_l]: relative position bias tables
    at::Tensor patchNormW, patchNormB;  // LayerNorm after the patch embedding
    double eps = 1e-5;
    bool defined() const { return !stages.empty(); }
};

// Eval-mode BatchNorm folded to a per-channel affine map: y = x * scale + shift.
struct Affine {
    at::Tensor scale, shift;  // [C]
};

// MaxViT's MBConv: pre-norm BatchNorm, 1x1 expansion + BN + activation, depthwise k x k (stride 2
// in a stage's first block) + BN + activation, squeeze-excitation (SiLU, sigmoid gate), 1x1
// projection with bias; added to the shortcut: identity, or for a downsampling block an
// average pool and (when the width changes) a 1x1 conv with bias.
struct MbConv {
    Affine pre, norm1, norm2;
    at::Tensor expandW;                 // [M, Cin, 1, 1]
    at::Tensor dwW;                     // [M, 1, k, k]
    at::Tensor seW1, seB1, seW2, seB2;  // [R, M, 1, 1], [R], [M, R, 1, 1], [M]
    at::Tensor projW, projB;            // [Cout, M, 1, 1], [Cout]
    at::Tensor shortW, shortB;          // [Cout, Cin, 1, 1], [Cout]; undefined: the channels pass as they are
    int stride = 1;
};

// MaxViT: a conv stem, then stages of blocks, each block an MBConv, then block attention (P x P
// neighbours) and grid attention (P x P tokens spaced across the image), each a pre-norm
// attention + MLP. VisionTower::encoder.blocks holds the attention units in order (two per
// block: block, grid); the output decomposed is the mean of the last tokens through the head's
// LayerNorm (normW / normB), before its pre-logits Linear + tanh.
struct MaxVitStage {
    int width = 0, heads = 0, depth = 0;
    int firstLayer = 0;  // index of the stage's first attention unit in encoder.blocks
    std::vector<MbConv> convs;
};

struct MaxVitTower {
    int partition = 7;            // P
    bool tfPadding = false;       // timm *_tf_*: TF "same" padding of stride-2 convs (right / bottom)
    bool poolTwo = true;          // downsampling shortcut: 2x2 average pool (timm), else 3x3 stride 2 pad 1 (torchvision)
    bool scaleByWidth = false;    // torchvision scales q.k by width^-1/2 (not head width)
    Activation convActivation = Activation::Gelu;
    at::Tensor stem1W, stem1B;    // [C, 3, 3, 3] stride 2; bias may be undefined
    Affine stemNorm;
    at::Tensor stem2W, stem2B;    // [C, C, 3, 3]
    std::vector<MaxVitStage> stages;
    std::vector<at::Tensor> relBias;  // per attention unit, dense [H, P^2, P^2]
    at::Tensor preLogitsW, preLogitsB;  // head: Linear + tanh after the norm; may be undefined
    bool defined() const { return !stages.empty(); }
};

struct ImagePreprocess {
    int imageSize = 224;       // crop size fed to the model
    int resizeShortest = 224;  // the shortest side is resized to this before the center crop
    bool squash = false;       // resize the whole image to imageSize x imageSize instead (no crop)
    bool bilinear = false;     // PIL's antialiased bilinear filter instead of bicubic (the checkpoint's config says)
    std::array<float, 3> mean{0.48145466f, 0.4578275f, 0.40821073f};
    std::array<float, 3> std{0.26862954f, 0.26130258f, 0.27577711f};
};

struct VisionTower {
    int width = 0;
    int patchSize = 0;
    int imageSize = 0;  // the checkpoint's native input size (its position grid x patch)
    at::Tensor patchW;  // [D, 3, p, p]
    at::Tensor patchB;  // [D] or undefined
    at::Tensor cls;     // [D]; undefined for models without a class token (SigLIP)
    at::Tensor extraPrefix;  // distillation token etc. [X, D] that have position embeddings; may be undefined
    at::Tensor registers;    // [R, D] register tokens without position embeddings; may be undefined
    at::Tensor pos;          // [Q + G*G, D], Q = prefix tokens that have position embeddings (0, 1 or 1+X)
    int posPrefix = 1;
    // Position embeddings at another grid: plain bicubic (false), or antialiased bicubic as timm's
    // resample_abs_pos_embed and LeGrad's dynamic-size forward (true; setInputSize sets it).
    bool posAntialias = false;
    at::Tensor lnPreW, lnPreB;  // undefined when the model has no ln_pre
    Encoder encoder;
    at::Tensor normW, normB;  // final norm (ln_post / norm / encoder.ln)
    double normEps = 1e-6;
    at::Tensor proj;          // [D, E] for CLIP; undefined for classifiers and SigLIP (E = D)
    at::Tensor headW, headB;  // classifier head [C, D], [C]; may be undefined
    AttentionPool pool;       // SigLIP: the output is the pool over all normed tokens, not a class token
    // Swin: encoder.blocks holds every stage's blocks in order (layer l of the grid), encoder.heads
    // is the largest head count, width the last stage's; the output is the mean over the last
    // stage's tokens after the final norm.
    SwinTower swin;
    MaxVitTower maxvit;

    int layers() const { return static_cast<int>(encoder.blocks.size()); }
    // Where the tower's tensors live (every family has a final norm; MaxViT has no patch conv).
    at::Device device() const { return normW.device(); }
    // The largest head count of a layer (every layer's, for plain ViTs).
    int heads() const { return encoder.heads; }
    bool hierarchical() const { return swin.defined() || maxvit.defined(); }
    // Heads of layer l (hierarchical towers have fewer heads in early stages).
    int headsIn(int layer) const;
    // Swin / MaxViT: the stage of layer l; 0 for plain ViTs.
    int stageOf(int layer) const;
    int numRegisters() const { return registers.defined() ? static_cast<int>(registers.size(0)) : 0; }
    int numExtraPrefix() const { return extraPrefix.defined() ? static_cast<int>(extraPrefix.size(0)) : 0; }
    // Test-time register tokens after the patch tokens (analysis/registers.h); 0 for the plain model.
    int suffixTokens() const { return encoder.testTimeRegisters.count; }
    int embedDim() const { return proj.defined() ? static_cast<int>(proj.size(1)) : width; }
    int gridFor(int imageSize) const { return imageSize / patchSize; }
    bool hasClassToken() const { return cls.defined(); }
    // Tokens before the patch tokens (class, distillation, registers); 0 for SigLIP.
    int prefixTokens() const { return (hasClassToken() ? 1 : 0) + numExtraPrefix() + numRegisters(); }
    int tokensFor(int imageSize) const { return prefixTokens() + gridFor(imageSize) * gridFor(imageSize); }
};

struct TextTower {
    int width = 0;
    int contextLength = 77;
    at::Tensor tokenEmbedding;  // [V, D]
    at::Tensor pos;             // [S, D]
    Encoder encoder;
    at::Tensor lnFinalW, lnFinalB;
    double lnEps = 1e-5;
    at::Tensor proj;   // [D, E]
    at::Tensor projB;  // [E] (SigLIP's text head is a Linear with bias); may be undefined
    int64_t endToken = 49407;
    bool causal = true;     // CLIP masks future positions; SigLIP's text tower does not
    bool poolLast = false;  // pool at the last position (SigLIP: texts are padded to the context) instead of the end token
};

struct ModelInfo {
    std::string family;  // "clip", "siglip", "vit" (timm: DeiT, DINO...), "dinov2", "torchvision-vit"
    std::string layout;  // "openai", "open_clip", "hf", "timm", "torchvision", "dinov2"
    std::string weightsPath;
    std::string format;  // checkpoint format name
    // What the checkpoint reader found (vitscope-cli info prints it).
    int shards = 1;
    std::string wrapperKey;                      // training-checkpoint key read ("model", "teacher"...)
    std::vector<std::string> wrapperCandidates;  // every key that held a state dict
    std::string strippedPrefix;                  // "module.backbone." ...
    std::vector<std::string> ignoredTensors;     // tensors of the file that were not read
    std::map<std::string, int> storedDTypes;     // dtype as stored -> tensor count
};

struct DecompositionMaps;  // model/forward.h

struct Model {
    ModelInfo info;
    VisionTower vision;
    std::optional<TextTower> text;  // CLIP only
    double logitScale = 1.0;        // exp() of the stored log scale, CLIP only
    // SigLIP scores an image-text pair as sigmoid(logitScale * cos + logitBias); CLIP's scores
    // are a softmax over texts. Rankings use the cosine either way.
    bool sigmoidScores = false;
    double logitBias = 0.0;
    ImagePreprocess preprocess;
    // merges .gz, the directory holding vocab.json + merges.txt, or a SentencePiece model
    // (spiece.model, SigLIP); may be empty
    std::string tokenizerPath;
    int numClasses = 0;
    // Per-convention linear maps of the decomposition, built from the weights on first use
    // (decompositionMaps()). Code that changes weights in place must reset them. Like the rest
    // of the model, owned by one thread at a time.
    mutable std::shared_ptr<const DecompositionMaps> mapsCache[2];
    Precision precision = Precision::Fp32;  // applyPrecision (model/precision.h) sets it
    bool isClip() const { return text.has_value(); }
};

// Every tensor slot of the model (undefined ones included), for moves and optimisers.
std::vector<at::Tensor*> modelTensorSlots(Model& model);
// Moves every tensor of the model to `device`.
void moveModel(Model& model, const at::Device& device);

}  // namespace vitscope
