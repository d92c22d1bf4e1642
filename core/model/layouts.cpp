#include "model/layouts.h"

namespace vitscope {

namespace {

BlockNames fused(std::string ln1, std::string ln2, std::string qkvW, std::string qkvB, std::string out, std::string fc1,
                 std::string fc2, std::string ls1 = {}, std::string ls2 = {}) {
    BlockNames n;
    n.ln1 = std::move(ln1);
    n.ln2 = std::move(ln2);
    n.qkvW = std::move(qkvW);
    n.qkvB = std::move(qkvB);
    n.out = std::move(out);
    n.fc1 = std::move(fc1);
    n.fc2 = std::move(fc2);
    n.ls1 = std::move(ls1);
    n.ls2 = std::move(ls2);
    return n;
}

LayoutTable openAi() {
    LayoutTable t{};
    t.name = "openai";
    t.visionBlocks = "visual.transformer.resblocks.{i}.";
    // open_clip adds LayerScale (ls_1 / ls_2) to some towers.
    t.block = fused("ln_1", "ln_2", "attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj", "mlp.c_fc", "mlp.c_proj",
                    "ls_1.gamma", "ls_2.gamma");
    t.patch = "visual.conv1";
    t.cls = "visual.class_embedding";
    t.pos = "visual.positional_embedding";
    t.batchedTokens = false;
    t.lnPre = "visual.ln_pre";
    t.norm = "visual.ln_post";
    t.proj = "visual.proj";
    t.projIsLinear = false;
    t.textBlocks = "transformer.resblocks.{i}.";
    t.tokenEmbedding = "token_embedding.weight";
    t.textPos = "positional_embedding";
    t.lnFinal = "ln_final";
    t.textProj = "text_projection";
    t.logitScale = "logit_scale";
    return t;
}

LayoutTable hfClip() {
    LayoutTable t{};
    t.name = "hf";
    t.visionBlocks = "vision_model.encoder.layers.{i}.";
    t.block.ln1 = "layer_norm1";
    t.block.ln2 = "layer_norm2";
    t.block.q = "self_attn.q_proj";
    t.block.k = "self_attn.k_proj";
    t.block.v = "self_attn.v_proj";
    t.block.out = "self_attn.out_proj";
    t.block.fc1 = "mlp.fc1";
    t.block.fc2 = "mlp.fc2";
    t.patch = "vision_model.embeddings.patch_embedding";
    t.cls = "vision_model.embeddings.class_embedding";
    t.pos = "vision_model.embeddings.position_embedding.weight";
    t.batchedTokens = false;
    t.lnPre = "vision_model.pre_layrnorm";
    t.norm = "vision_model.post_layernorm";
    t.proj = "visual_projection.weight";
    t.projIsLinear = true;
    t.textBlocks = "text_model.encoder.layers.{i}.";
    t.tokenEmbedding = "text_model.embeddings.token_embedding.weight";
    t.textPos = "text_model.embeddings.position_embedding.weight";
    t.lnFinal = "text_model.final_layer_norm";
    t.textProj = "text_projection.weight";
    t.logitScale = "logit_scale";
    return t;
}

LayoutTable timm() {
    LayoutTable t{};
    t.name = "timm";
    t.visionBlocks = "blocks.{i}.";
    t.block = fused("norm1", "norm2", "attn.qkv.weight", "attn.qkv.bias", "attn.proj", "mlp.fc1", "mlp.fc2", "ls1.gamma",
                    "ls2.gamma");
    t.patch = "patch_embed.proj";
    t.cls = "cls_token";
    t.pos = "pos_embed";
    t.batchedTokens = true;
    t.lnPre = "norm_pre";
    t.norm = "norm";
    t.head = "head";
    return t;
}

LayoutTable torchvision() {
    LayoutTable t{};
    t.name = "torchvision";
    t.visionBlocks = "encoder.layers.encoder_layer_{i}.";
    t.block = fused("ln_1", "ln_2", "self_attention.in_proj_weight", "self_attention.in_proj_bias",
                    "self_attention.out_proj", "mlp.0", "mlp.3");
    t.block.fc1Alt = "mlp.linear_1";  // torchvision < 0.13
    t.block.fc2Alt = "mlp.linear_2";
    t.patch = "conv_proj";
    t.cls = "class_token";
    t.pos = "encoder.pos_embedding";
    t.batchedTokens = true;
    t.norm = "encoder.ln";
    t.head = "heads.head";
    return t;
}

// Hugging Face SiglipModel / SiglipVisionModel: CLIP's names without class token, ln_pre and
// projections; the pooling head under vision_model.head, the text head a Linear with bias.
LayoutTable hfSiglip() {
    LayoutTable t = hfClip();
    t.name = "hf";
    t.cls.clear();
    t.lnPre.clear();
    t.proj.clear();
    t.pool.probe = "vision_model.head.probe";
    t.pool.inProjW = "vision_model.head.attention.in_proj_weight";
    t.pool.inProjB = "vision_model.head.attention.in_proj_bias";
    t.pool.out = "vision_model.head.attention.out_proj";
    t.pool.norm = "vision_model.head.layernorm";
    t.pool.fc1 = "vision_model.head.mlp.fc1";
    t.pool.fc2 = "vision_model.head.mlp.fc2";
    t.textProj = "text_model.head";
    t.textProjIsLinearWithBias = true;
    t.logitBias = "logit_bias";
    return t;
}

// timm ViTs with global_pool='map' (vit_*_siglip_*): timm names, no class token, attn_pool.*.
LayoutTable timmSiglip() {
    LayoutTable t = timm();
    t.cls.clear();
    t.pool.probe = "attn_pool.latent";
    t.pool.q = "attn_pool.q";
    t.pool.kv = "attn_pool.kv";
    t.pool.out = "attn_pool.proj";
    t.pool.norm = "attn_pool.norm";
    t.pool.fc1 = "attn_pool.mlp.fc1";
    t.pool.fc2 = "attn_pool.mlp.fc2";
    return t;
}

// open_clip SigLIP: the timm tower under visual.trunk. (read through timmSiglip() after the
// prefix is stripped) and open_clip's text tower under text.
LayoutTable openClipSiglip() {
    LayoutTable t = openAi();
    t.name = "open_clip";
    t.visionBlocks.clear();
    t.patch.clear();
    t.cls.clear();
    t.pos.clear();
    t.lnPre.clear();
    t.norm.clear();
    t.proj.clear();
    t.textBlocks = "text.transformer.resblocks.{i}.";
    t.tokenEmbedding = "text.token_embedding.weight";
    t.textPos = "text.positional_embedding";
    t.lnFinal = "text.ln_final";
    t.textProj = "text.text_projection";
    t.textProjIsLinearWithBias = true;
    t.logitBias = "logit_bias";
    return t;
}

// timm SwinTransformer (>= 0.9): layers.S.downsample starts stage S >= 1, head.fc is the classifier.
LayoutTable timmSwin() {
    LayoutTable t{};
    t.name = "timm";
    t.block = fused("norm1", "norm2", "attn.qkv.weight", "attn.qkv.bias", "attn.proj", "mlp.fc1", "mlp.fc2");
    t.patch = "patch_embed.proj";
    t.norm = "norm";
    t.head = "head.fc";
    t.swin.stage = "layers.{i}.blocks.";
    t.swin.merge = "layers.{i}.downsample";
    t.swin.mergeNorm = "norm";
    t.swin.reduction = "reduction";
    t.swin.relBias = "attn.relative_position_bias_table";
    t.swin.patchNorm = "patch_embed.norm";
    return t;
}

// torchvision swin_t / swin_s / swin_b: features.0 = [conv, permute, LayerNorm], then stages at
// features.1, 3, 5, 7 and patch mergings at features.2, 4, 6.
LayoutTable torchvisionSwin() {
    LayoutTable t{};
    t.name = "torchvision";
    t.block = fused("norm1", "norm2", "attn.qkv.weight", "attn.qkv.bias", "attn.proj", "mlp.0", "mlp.3");
    t.patch = "features.0.0";
    t.norm = "norm";
    t.head = "head";
    t.swin.stage = "features.{i}.";
    t.swin.stageStep = 2;
    t.swin.stageStart = 1;
    t.swin.merge = "features.{i}";
    t.swin.mergeStep = 2;
    t.swin.mergeStart = 0;
    t.swin.mergeNorm = "norm";
    t.swin.reduction = "reduction";
    t.swin.relBias = "attn.relative_position_bias_table";
    t.swin.patchNorm = "features.0.2";
    return t;
}

// timm MaxxVit with the TF-ported settings (maxvit_*_tf_*): MBConv under conv., block / grid
// attention under attn_block. / attn_grid., a norm + pre-logits + fc head.
LayoutTable timmMaxVit() {
    LayoutTable t{};
    t.name = "timm";
    MaxVitNames& m = t.maxvit;
    m.block = "stages.{s}.blocks.{b}.";
    m.conv = "conv.";
    m.shortcut = "conv.shortcut.expand";
    m.preNorm = "pre_norm";
    m.expand = "conv1_1x1";
    m.norm1 = "norm1";
    m.dw = "conv2_kxk";
    m.norm2 = "norm2";
    m.se1 = "se.fc1";
    m.se2 = "se.fc2";
    m.proj = "conv3_1x1";
    m.unitBlock = "attn_block.";
    m.unitGrid = "attn_grid.";
    m.unit = fused("norm1", "norm2", "attn.qkv.weight", "attn.qkv.bias", "attn.proj", "mlp.fc1", "mlp.fc2");
    m.relBias = "attn.rel_pos.relative_position_bias_table";
    m.tableHeadsFirst = true;
    m.stem1 = "stem.conv1";
    m.stemNorm = "stem.norm1";
    m.stem2 = "stem.conv2";
    m.headNorm = "head.norm";
    m.preLogits = "head.pre_logits.fc";
    m.head = "head.fc";
    return t;
}

// torchvision maxvit_t: blocks.S.layers.B.layers.{MBconv, window_attention, grid_attention}.
LayoutTable torchvisionMaxVit() {
    LayoutTable t{};
    t.name = "torchvision";
    MaxVitNames& m = t.maxvit;
    m.block = "blocks.{s}.layers.{b}.layers.";
    m.conv = "MBconv.layers.";
    m.shortcut = "MBconv.proj.1";
    m.preNorm = "pre_norm";
    m.expand = "conv_a.0";
    m.norm1 = "conv_a.1";
    m.dw = "conv_b.0";
    m.norm2 = "conv_b.1";
    m.se1 = "squeeze_excitation.fc1";
    m.se2 = "squeeze_excitation.fc2";
    m.proj = "conv_c";
    m.unitBlock = "window_attention.";
    m.unitGrid = "grid_attention.";
    m.unit = fused("attn_layer.0", "mlp_layer.0", "attn_layer.1.to_qkv.weight", "attn_layer.1.to_qkv.bias", "attn_layer.1.merge",
                   "mlp_layer.1", "mlp_layer.3");
    m.relBias = "attn_layer.1.relative_position_bias_table";
    m.tableHeadsFirst = false;
    m.stem1 = "stem.0.0";
    m.stemNorm = "stem.0.1";
    m.stem2 = "stem.1.0";
    m.headNorm = "classifier.2";
    m.preLogits = "classifier.3";
    m.head = "classifier.5";
    return t;
}

}  // namespace

const LayoutTable& layoutTable(Layout layout) {
    static const LayoutTable kOpenAi = openAi(), kHf = hfClip(), kTimm = timm(), kTorchvision = torchvision(),
                             kHfSiglip = hfSiglip(), kTimmSiglip = timmSiglip(), kOpenClipSiglip = openClipSiglip(), kTimmSwin = timmSwin(),
                             kTorchvisionSwin = torchvisionSwin(), kTimmMaxVit = timmMaxVit(),
                             kTorchvisionMaxVit = torchvisionMaxVit();
    switch (layout) {
    case Layout::OpenAi: return kOpenAi;
    case Layout::HfClip: return kHf;
    case Layout::Timm: return kTimm;
    case Layout::Torchvision: return kTorchvision;
    case Layout::HfSiglip: return kHfSiglip;
    case Layout::TimmSiglip: return kTimmSiglip;
    case Layout::OpenClipSiglip: return kOpenClipSiglip;
    case Layout::TimmSwin: return kTimmSwin;
    case Layout::TorchvisionSwin: return kTorchvisionSwin;
    case Layout::TimmMaxVit: return kTimmMaxVit;
    case Layout::TorchvisionMaxVit: return kTorchvisionMaxVit;
    }
    return kOpenAi;
}

std::string indexed(const std::string& pattern, int index) {
    std::string out = pattern;
    const auto at = out.find("{i}");
    if (at != std::string::npos) out.replace(at, 3, std::to_string(index));
    return out;
}

BlockNames blockNames(const LayoutTable& table, const std::string& pattern, int index) {
    const std::string p = indexed(pattern, index);
    auto full = [&](const std::string& s) { return s.empty() ? s : p + s; };
    const BlockNames& b = table.block;
    BlockNames n;
    n.ln1 = full(b.ln1);
    n.ln2 = full(b.ln2);
    n.qkvW = full(b.qkvW);
    n.qkvB = full(b.qkvB);
    n.q = full(b.q);
    n.k = full(b.k);
    n.v = full(b.v);
    n.out = full(b.out);
    n.fc1 = full(b.fc1);
    n.fc2 = full(b.fc2);
    n.fc1Alt = full(b.fc1Alt);
    n.fc2Alt = full(b.fc2Alt);
    n.ls1 = full(b.ls1);
    n.ls2 = full(b.ls2);
    return n;
}

}  // namespace vitscope
