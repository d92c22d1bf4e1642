#include "model/random_weights.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <string>

namespace vitscope {

namespace {

class Filler {
public:
    Filler(uint64_t seed, bool training) : m_gen(at::make_generator<at::CPUGeneratorImpl>(seed)), m_training(training) {}
    at::Tensor normal(std::vector<int64_t> shape, double stdv) { return at::normal(0.0, stdv, shape, m_gen); }
    at::Tensor gain(int64_t d) { return m_training ? at::ones({d}) : 1.0 + normal({d}, 0.1); }
    at::Tensor bias(int64_t d) { return m_training ? at::zeros({d}) : normal({d}, 0.05); }
    at::Tensor linear(int64_t out, int64_t in) { return normal({out, in}, 1.0 / std::sqrt(static_cast<double>(in))); }

private:
    at::Generator m_gen;
    bool m_training;
};

struct Names {
    std::string ln1, ln2, qkv, out, fc1, fc2, ls1, ls2;
    bool separateQkv = false;
};

void addBlock(StateDict& sd, Filler& f, const Names& n, int64_t d, int64_t m, bool layerScale) {
    sd[n.ln1 + ".weight"] = f.gain(d);
    sd[n.ln1 + ".bias"] = f.bias(d);
    if (n.separateQkv) {
        for (const char* p : {"q_proj", "k_proj", "v_proj"}) {
            sd[n.qkv + p + ".weight"] = f.linear(d, d);
            sd[n.qkv + p + ".bias"] = f.bias(d);
        }
    } else {
        sd[n.qkv + "weight"] = f.linear(3 * d, d);
        sd[n.qkv + "bias"] = f.bias(3 * d);
    }
    sd[n.out + ".weight"] = f.linear(d, d);
    sd[n.out + ".bias"] = f.bias(d);
    sd[n.ln2 + ".weight"] = f.gain(d);
    sd[n.ln2 + ".bias"] = f.bias(d);
    sd[n.fc1 + ".weight"] = f.linear(m, d);
    sd[n.fc1 + ".bias"] = f.bias(m);
    sd[n.fc2 + ".weight"] = f.linear(d, m);
    sd[n.fc2 + ".bias"] = f.bias(d);
    if (layerScale) {
        sd[n.ls1] = 0.5 + f.normal({d}, 0.2);
        sd[n.ls2] = 0.5 + f.normal({d}, 0.2);
    }
}

void addOpenAiClip(StateDict& sd, Filler& f, const RandomVitSpec& s) {
    const int64_t d = s.width, g = s.imageSize / s.patchSize, e = s.embedDim;
    sd["visual.conv1.weight"] = f.normal({d, 3, s.patchSize, s.patchSize}, 0.02);
    sd["visual.class_embedding"] = f.normal({d}, 0.5);
    sd["visual.positional_embedding"] = f.normal({1 + g * g, d}, 0.5);
    sd["visual.ln_pre.weight"] = f.gain(d);
    sd["visual.ln_pre.bias"] = f.bias(d);
    auto names = [](const std::string& p) {
        Names n;
        n.ln1 = p + "ln_1";
        n.ln2 = p + "ln_2";
        n.qkv = p + "attn.in_proj_";
        n.out = p + "attn.out_proj";
        n.fc1 = p + "mlp.c_fc";
        n.fc2 = p + "mlp.c_proj";
        return n;
    };
    for (int i = 0; i < s.layers; ++i)
        addBlock(sd, f, names("visual.transformer.resblocks." + std::to_string(i) + "."), d, d * s.mlpRatio, false);
    sd["visual.ln_post.weight"] = f.gain(d);
    sd["visual.ln_post.bias"] = f.bias(d);
    sd["visual.proj"] = f.linear(e, d).t().contiguous();
    const int64_t dt = s.textWidth;
    sd["token_embedding.weight"] = f.normal({s.vocabSize, dt}, 0.02);
    sd["positional_embedding"] = f.normal({s.contextLength, dt}, 0.01);
    for (int i = 0; i < s.textLayers; ++i)
        addBlock(sd, f, names("transformer.resblocks." + std::to_string(i) + "."), dt, dt * 4, false);
    sd["ln_final.weight"] = f.gain(dt);
    sd["ln_final.bias"] = f.bias(dt);
    sd["text_projection"] = f.linear(e, dt).t().contiguous();
    sd["logit_scale"] = at::full({}, std::log(1.0 / 0.07));
}

void addHfClip(StateDict& sd, Filler& f, const RandomVitSpec& s) {
    const int64_t d = s.width, g = s.imageSize / s.patchSize, e = s.embedDim;
    sd["vision_model.embeddings.patch_embedding.weight"] = f.normal({d, 3, s.patchSize, s.patchSize}, 0.02);
    sd["vision_model.embeddings.class_embedding"] = f.normal({d}, 0.5);
    sd["vision_model.embeddings.position_embedding.weight"] = f.normal({1 + g * g, d}, 0.5);
    sd["vision_model.pre_layrnorm.weight"] = f.gain(d);
    sd["vision_model.pre_layrnorm.bias"] = f.bias(d);
    auto names = [](const std::string& p) {
        Names n;
        n.ln1 = p + "layer_norm1";
        n.ln2 = p + "layer_norm2";
        n.qkv = p + "self_attn.";
        n.separateQkv = true;
        n.out = p + "self_attn.out_proj";
        n.fc1 = p + "mlp.fc1";
        n.fc2 = p + "mlp.fc2";
        return n;
    };
    for (int i = 0; i < s.layers; ++i)
        addBlock(sd, f, names("vision_model.encoder.layers." + std::to_string(i) + "."), d, d * s.mlpRatio, false);
    sd["vision_model.post_layernorm.weight"] = f.gain(d);
    sd["vision_model.post_layernorm.bias"] = f.bias(d);
    sd["visual_projection.weight"] = f.linear(e, d);
    const int64_t dt = s.textWidth;
    sd["text_model.embeddings.token_embedding.weight"] = f.normal({s.vocabSize, dt}, 0.02);
    sd["text_model.embeddings.position_embedding.weight"] = f.normal({s.contextLength, dt}, 0.01);
    for (int i = 0; i < s.textLayers; ++i)
        addBlock(sd, f, names("text_model.encoder.layers." + std::to_string(i) + "."), dt, dt * 4, false);
    sd["text_model.final_layer_norm.weight"] = f.gain(dt);
    sd["text_model.final_layer_norm.bias"] = f.bias(dt);
    sd["text_projection.weight"] = f.linear(e, dt);
    sd["logit_scale"] = at::full({}, std::log(1.0 / 0.07));
}

void addTimm(StateDict& sd, Filler& f, const RandomVitSpec& s, bool dinov2) {
    const int64_t d = s.width, g = s.imageSize / s.patchSize;
    sd["patch_embed.proj.weight"] = f.normal({d, 3, s.patchSize, s.patchSize}, 0.02);
    sd["patch_embed.proj.bias"] = f.bias(d);
    sd["cls_token"] = f.normal({1, 1, d}, 0.5);
    sd["pos_embed"] = f.normal({1, 1 + g * g, d}, 0.5);
    if (dinov2) {
        sd["mask_token"] = at::zeros({1, d});
        if (s.registers > 0) sd["register_tokens"] = f.normal({1, s.registers, d}, 0.5);
    }
    for (int i = 0; i < s.layers; ++i) {
        const std::string p = "blocks." + std::to_string(i) + ".";
        Names n;
        n.ln1 = p + "norm1";
        n.ln2 = p + "norm2";
        n.qkv = p + "attn.qkv.";
        n.out = p + "attn.proj";
        n.fc1 = p + "mlp.fc1";
        n.fc2 = p + "mlp.fc2";
        n.ls1 = p + "ls1.gamma";
        n.ls2 = p + "ls2.gamma";
        addBlock(sd, f, n, d, d * s.mlpRatio, s.layerScale);
    }
    sd["norm.weight"] = f.gain(d);
    sd["norm.bias"] = f.bias(d);
    if (s.numClasses > 0) {
        sd["head.weight"] = f.linear(s.numClasses, d);
        sd["head.bias"] = f.bias(s.numClasses);
    }
}

void addTorchvision(StateDict& sd, Filler& f, const RandomVitSpec& s) {
    const int64_t d = s.width, g = s.imageSize / s.patchSize;
    sd["conv_proj.weight"] = f.normal({d, 3, s.patchSize, s.patchSize}, 0.02);
    sd["conv_proj.bias"] = f.bias(d);
    sd["class_token"] = f.normal({1, 1, d}, 0.5);
    sd["encoder.pos_embedding"] = f.normal({1, 1 + g * g, d}, 0.5);
    for (int i = 0; i < s.layers; ++i) {
        const std::string p = "encoder.layers.encoder_layer_" + std::to_string(i) + ".";
        Names n;
        n.ln1 = p + "ln_1";
        n.ln2 = p + "ln_2";
        n.qkv = p + "self_attention.in_proj_";
        n.out = p + "self_attention.out_proj";
        n.fc1 = p + "mlp.0";
        n.fc2 = p + "mlp.3";
        addBlock(sd, f, n, d, d * s.mlpRatio, false);
    }
    sd["encoder.ln.weight"] = f.gain(d);
    sd["encoder.ln.bias"] = f.bias(d);
    sd["heads.head.weight"] = f.linear(s.numClasses, d);
    sd["heads.head.bias"] = f.bias(s.numClasses);
}

}  // namespace

StateDict randomVitStateDict(const RandomVitSpec& spec) {
    Filler f(spec.seed, spec.trainingInit);
    StateDict sd;
    switch (spec.layout) {
    case RandomLayout::OpenAiClip: addOpenAiClip(sd, f, spec); break;
    case RandomLayout::HfClip: addHfClip(sd, f, spec); break;
    case RandomLayout::Timm: addTimm(sd, f, spec, false); break;
    case RandomLayout::Dinov2: addTimm(sd, f, spec, true); break;
    case RandomLayout::Torchvision: addTorchvision(sd, f, spec); break;
    }
    return sd;
}

}  // namespace vitscope
