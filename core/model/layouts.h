#pragma once
// One table of tensor names per checkpoint layout of plain ViTs and CLIP: the loader reads
// through it, the exporter writes through it and the random-weights generator makes files
// with it, so a layout is spelled out once. Quirks are columns (fused or split q/k/v,
// LayerScale, transposed projections, [1, 1, D]-shaped tokens), not if/else chains.
//
//   const LayoutTable& t = layoutTable(Layout::Timm);
//   const BlockNames n = blockNames(t, t.visionBlocks, 3);  // "blocks.3.norm1", ...
//   sd[n.ln1 + ".weight"] = ...;
#include <string>

namespace vitscope {

enum class Layout { OpenAi, HfClip, Timm, Torchvision, HfSiglip, TimmSiglip, OpenClipSiglip, TimmSwin, TorchvisionSwin, TimmMaxVit, TorchvisionMaxVit };

// The names of one pre-norm block's tensors. Names of a weight + bias pair are prefixes
// (".weight" / ".bias" appended); the others are full tensor names.
struct BlockNames {
    std::string ln1, ln2;        // LayerNorm prefixes
    std::string qkvW, qkvB;      // fused in-projection [3D, D] and [3D]; empty when q/k/v are split
    std::string q, k, v;         // split projections (prefixes); empty when fused
    std::string out, fc1, fc2;   // Linear prefixes
    std::string fc1Alt, fc2Alt;  // older spellings the loader also accepts; may be empty
    std::string ls1, ls2;        // LayerScale gammas (absent in most checkpoints); may be empty
};

// The attention-pooling head of SigLIP towers (prefixes of Linear / LayerNorm pairs unless noted).
struct PoolNames {
    std::string probe;             // full name: the learned query, [1, 1, D]
    std::string inProjW, inProjB;  // fused [3D, D] / [3D] (full names); empty when q and kv are split
    std::string q, kv;             // split: q [D, D] for the probe, kv [2D, D] for the tokens
    std::string out, norm, fc1, fc2;
};

// Swin's stages. Patterns hold "{i}": a stage's blocks are under indexed(stage, i * stageStep +
// stageStart) + "{i}" for the block (blockNames with that pattern), its patch merging under
// indexed(merge, s * mergeStep + mergeStart) for stages s >= 1 (timm >= 0.9 and torchvision); timm
// < 0.9 stored the merging at the end of the previous stage (mergeStart = -1 there).
struct SwinNames {
    std::string stage, merge;          // prefix patterns
    int stageStep = 1, stageStart = 0, mergeStep = 1, mergeStart = 0;
    std::string mergeNorm, reduction;  // inside a merging (LayerNorm / Linear prefixes)
    std::string relBias;               // inside a block: the relative position bias table (full name)
    std::string patchNorm;             // LayerNorm after the patch embedding
};

// MaxViT's names. `block` holds "{s}" (stage) and "{b}" (block in the stage); the others are
// relative to a block (conv, units), to the block's conv (its parts) or absolute (stem, head).
// BatchNorms are prefixes of weight / bias / running_mean / running_var.
struct MaxVitNames {
    std::string block;
    std::string conv, shortcut;          // the MBConv and its shortcut's 1x1 conv (relative to the block)
    std::string preNorm, expand, norm1, dw, norm2, se1, se2, proj;  // relative to conv
    std::string unitBlock, unitGrid;     // the two attention units (relative to the block)
    BlockNames unit;                     // inside a unit
    std::string relBias;                 // inside a unit (full name)
    bool tableHeadsFirst = false;        // [H, 2P-1, 2P-1] (timm's TF bias) or [(2P-1)^2, H] (torchvision)
    std::string stem1, stemNorm, stem2, headNorm, preLogits, head;
};

struct LayoutTable {
    const char* name;           // "openai", "hf", "timm", "torchvision"
    std::string visionBlocks;   // block prefix pattern, "{i}" = block index
    BlockNames block;           // names inside a block, relative to its prefix
    std::string patch;          // patch-embedding conv prefix (weight [D, 3, p, p], optional bias)
    std::string cls, pos;       // class token, position table
    bool batchedTokens;         // cls stored [1, 1, D] and pos [1, N, D] (else [D] and [N, D])
    std::string lnPre;          // pre-norm prefix; empty when the layout has none
    std::string norm;           // final norm prefix
    std::string proj;           // CLIP image projection; empty for classifiers
    bool projIsLinear;          // proj stored as a Linear weight [E, D] (else [D, E])
    std::string head;           // classifier prefix; empty when none
    PoolNames pool;             // attention pooling (SigLIP); empty when the output is the class token
    SwinNames swin;             // Swin's stages; empty for plain ViTs
    MaxVitNames maxvit;         // MaxViT; empty for other families
    // CLIP text tower (empty for image-only layouts).
    std::string textBlocks, tokenEmbedding, textPos, lnFinal, textProj, logitScale;
    std::string logitBias;  // SigLIP's sigmoid bias; empty for CLIP
    // SigLIP text towers: textProj is a Linear prefix (weight [E, D] + bias) instead of a matrix.
    bool textProjIsLinearWithBias = false;
};

const LayoutTable& layoutTable(Layout layout);

// The names of block `index`'s tensors under `pattern` (a prefix with "{i}").
BlockNames blockNames(const LayoutTable& table, const std::string& pattern, int index);
// `pattern` with "{i}" replaced by `index`.
std::string indexed(const std::string& pattern, int index);

}  // namespace vitscope
