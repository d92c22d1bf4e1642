#pragma once
// The explorer's concept dictionaries (Explorer::spliceImage, openSae, saeLatents, saeLatent,
// searchSaeLatents): what they keep between calls, and the functions behind them. Internal to
// core/explore (torch types); the GUI sees explorer.h's plain values only.
//
//   ConceptDictionaries d;
//   d.openSae(model, "models/shapes-clip/sae/topk-output.safetensors");
//   SaeImageLatents a = d.latents(ctx, poolTexts, poolEmbeddings);
//   SaeLatentDetail one = d.latent(ctx, a.active[0].latent, 8);
#include "analysis/sae.h"
#include "explore/explorer.h"

#include <optional>
#include <string>
#include <vector>

namespace vitscope {

class CacheView;
class DatasetCache;
class TextEncoder;
struct Aligner;

// What one call needs of the explorer's state.
struct ConceptContext {
    const Model& model;
    const ModelSummary& summary;
    const at::Tensor& pixels;  // [1, 3, S, S] the open image
    const std::string& imagePath;
    int gridH = 0, gridW = 0, prefix = 0;  // the image's token grid and its leading non-patch tokens
    const Aligner* aligner = nullptr;
    const TextEncoder* text = nullptr;       // null: no text side
    const DatasetCache* cache = nullptr;     // the open dataset (may be null)
    const CacheView* view = nullptr;
};

class ConceptDictionaries {
public:
    SpliceView splice(const ConceptContext& c, const std::string& vocabFile, double l1, const std::string& component,
                      const JobContext& job);

    SaeSummary openSae(const Model& model, const ModelSummary& summary, const std::string& path);
    void close();  // another model: nothing of the old one's
    bool hasSae() const { return m_sae.has_value(); }
    // The names' texts (the pool) are embedded once per pool file.
    SaeImageLatents latents(const ConceptContext& c, const std::string& poolFile);
    SaeLatentDetail latent(const ConceptContext& c, int64_t latent, int topImages);
    HeatmapResult latentHeatmap(const ConceptContext& c, int64_t latent);
    std::vector<SaeLatentRow> search(const ConceptContext& c, const std::string& text, int count);

private:
    const SparseAutoencoder& sae() const;
    const SaeAttribution& attribution(const ConceptContext& c);  // the open image's, kept per image
    void nameRows(std::vector<SaeLatentRow>& rows) const;
    bool nameable(const ConceptContext& c) const;

    std::optional<SparseAutoencoder> m_sae;
    std::string m_attributed;  // the image path m_attribution belongs to
    SaeSiteTerms m_terms;  // the open image's decomposed site (one forward per image; latent() reuses it)
    SaeAttribution m_attribution;
    std::string m_pool;                 // the naming pool's file
    std::vector<std::string> m_poolTexts;
    at::Tensor m_similarity;            // [T, S] saeConceptSimilarity of the pool
    std::string m_vocabFile;            // SpLiCE: the vocabulary embedded
    std::vector<std::string> m_vocabTexts;
    at::Tensor m_vocab;                 // [V, E]
    std::string m_meanOf;               // SpLiCE: the dataset (and component) the mean came from
    at::Tensor m_mean;                  // [E]
};

}  // namespace vitscope
