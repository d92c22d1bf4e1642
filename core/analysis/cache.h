#pragma once
// The dataset cache: the decomposition of every image of a collection, stored as .npy arrays
// that numpy can memory-map, so that TextSpan, ranking, retrieval and ablation never run the
// model again.
//
// CACHE/
//   manifest.json   model fingerprint, preprocessing, convention, layers, counts, "complete"
//   inputs.txt      the image list the build was started with (resumption reads it back)
//   paths.txt       one line per cached row: the image path
//   skipped.txt     path <TAB> reason, for unreadable images
//   heads.npy       [N, Lc, H, E] fp16: per-head terms of the cached layers
//   mlps.npy        [N, L, E] fp16
//   other.npy       [N, 4, E] fp16: embedding, attention biases (all layers), final-norm bias,
//                   heads of the layers not cached (so that every row still sums to the output)
//   output.npy      [N, E] fp32: the model's output (normalised under the textspan convention)
//   pool.npy        [N, P + 2, E] fp16, attention-pooled models (SigLIP) only: the pooling heads
//                   pool.h0.., pool.bias, pool.mlp (TextSpan's level; they sum to the output). The
//                   encoder-level rows need pool.mlp too: heads + mlps + other + pool.mlp = output.
//   (manifest.json also records "precision": the model's, model/precision.h)
//   progress.json   rows written so far (rewritten atomically after each chunk)
//
// A build streams in chunks, stops between chunks when cancelled, and resumes from
// progress.json; the arrays are only declared complete (header counts and manifest) at the end,
// so a build killed at any moment never reads as a complete cache.
#include "job.h"
#include "model/forward.h"

#include <memory>
#include <string>
#include <vector>

namespace vitscope {

class MappedFile;

struct CacheBuildParams {
    std::string outDir;
    std::string modelSpec;       // what the user passed to open the model (recorded for later analyses)
    std::string layers = "all";  // "all" or "last:K"
    int batch = 32;
    int loaders = 0;             // image-decoding threads; 0: 1 on the CPU, one per core (up to 16) on a GPU
    Convention convention = Convention::Exact;
    int fromStage = 0, fromBlock = 0;  // vit-decompose's detach block (recorded in the manifest)
    void validate() const;  // throws InputError
};

struct CacheBuildResult {
    int64_t rows = 0, skipped = 0, inputs = 0;
    double seconds = 0, imagesPerSecond = 0;  // of this invocation
    bool cancelled = false, resumed = false;
};

// Image files of a directory (recursive, sorted, by extension), of a labelled dataset folder
// (one holding labels.csv with a "file" column: the files it lists, sorted), or of a list file
// (one path per line, relative paths taken from the list's folder). Throws IoError / InputError.
std::vector<std::string> listImages(const std::string& dirOrList);

// Layer indices selected by "all" or "last:K" for a model of L layers. Throws InputError.
std::vector<int> parseLayerSelection(const std::string& spec, int layers);

// A short fingerprint of a model's weights file (size and FNV-1a of its bytes).
std::string modelFingerprint(const Model& model);

CacheBuildResult buildCache(const Model& model, const std::vector<std::string>& images, const CacheBuildParams& params,
                            const JobContext& job);

// A complete cache opened read-only; arrays are memory-mapped (no copy) and fp16.
class DatasetCache {
public:
    explicit DatasetCache(const std::string& dir);  // throws FormatError / IoError naming the file
    ~DatasetCache();

    const std::string& dir() const { return m_dir; }
    int64_t size() const { return m_rows; }
    int numLayers() const { return m_layers; }  // all layers of the model
    int numHeads() const { return m_heads; }  // the largest head count of a layer
    int headsIn(int layer) const;             // heads of model layer l (Swin: fewer in early stages)
    int embedDim() const { return m_embed; }
    const std::vector<int>& cachedLayers() const { return m_cachedLayers; }
    const std::string& fingerprint() const { return m_fingerprint; }
    const std::string& modelName() const { return m_modelName; }
    const std::string& modelSpec() const { return m_modelSpec; }  // as passed to cache build; may be empty
    Convention convention() const { return m_convention; }
    // The precision the rows were computed in ("fp32", "bf16"...; manifest "precision", fp32 for
    // caches from before it was recorded). Every cache stores its terms as fp16 / fp32 on disk.
    const std::string& precision() const { return m_precision; }
    // The options that decompose an image as this cache's rows were (convention, detach block).
    DecomposeOptions decomposeOptions() const;
    const std::vector<std::string>& paths() const { return m_paths; }

    at::Tensor heads() const;   // [N, Lc, H, E] fp16, mapped
    at::Tensor mlps() const;    // [N, L, E] fp16, mapped
    at::Tensor other() const;   // [N, 4, E] fp16, mapped
    at::Tensor output() const;  // [N, E] fp32, mapped
    int numPoolHeads() const { return m_poolHeads; }  // 0 unless the model is attention-pooled
    int numConvs() const { return m_convs; }          // MaxViT: MBConv blocks; 0 otherwise
    at::Tensor convs() const;   // [N, K, E] fp16, mapped; undefined without MBConv blocks
    at::Tensor pool() const;    // [N, P + 2, E] fp16, mapped; undefined without a pool
    // Index into cachedLayers() of model layer l; throws InputError when l is not cached.
    int cachedIndex(int layer) const;
    // Throws InputError unless the cache was built from this model's weights.
    void checkModel(const Model& model) const;

private:
    std::string m_dir, m_fingerprint, m_modelName, m_modelSpec, m_precision = "fp32";
    int64_t m_rows = 0;
    int m_layers = 0, m_heads = 0, m_embed = 0, m_poolHeads = 0, m_convs = 0;
    Convention m_convention = Convention::Exact;
    int m_fromStage = 0, m_fromBlock = 0;
    std::vector<int> m_cachedLayers;
    std::vector<int> m_headsPerLayer;  // empty: every layer has m_heads
    std::vector<std::string> m_paths;
    std::vector<std::shared_ptr<MappedFile>> m_files;
    at::Tensor m_headsT, m_mlpsT, m_otherT, m_outputT, m_poolT, m_convsT;
};

}  // namespace vitscope
