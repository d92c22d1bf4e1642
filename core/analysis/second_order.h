#pragma once
// Second-order effects of MLP neurons (Gandelsman, Efros, Steinhardt, "Interpreting the
// Second-Order Effects of Neurons in CLIP", ICLR 2025; reference: second_order_lens,
// prs_second_order_neurons_hook.py + compute_second_order_neuron_prs.py).
//
// Neuron n of block m writes a[t, n] * w_n (w_n: column n of the block's second MLP matrix, times
// LayerScale where the model has one) into the residual at every token t. Its second-order effect
// is what that write contributes to the output through every single later attention head
// (l > m, h) at the class-token query, with every LayerNorm's statistics frozen at the forward
// pass. Paths through later MLPs or chains of heads are not counted.
//
// Conventions:
// - reference (default): what the reference's hook stores. Each neuron gets 1/M of the MLP's output
//   bias; at block l, 1/((1+2l) M) of ln_1's mean and offset and of b_V; 1/((1+2l) H M) of b_O;
//   1/((1+2l)(1+2L) H M) of the final norm's mean and offset (per (l, h) path); no term is centred
//   by its own mean; the sum over paths is scaled by coefficient / |output| (100 in the reference).
//   Summed over a layer's neurons it is that layer's whole MLP output taken as one component of the
//   1 + 2l at each later block, through the same paths.
// - exact: vitscope's convention. Each write is centred by its own channel mean at every norm, the
//   biases (the MLP's, ln offsets, b_V, b_O) are not shared out, and the terms stay in output units
//   (no scaling). Summed over the neurons it is the MLP's output without its bias through the paths.
//
// Cost: the image-independent part U[l, h, n] = (w_n through ln_1's gain, W_V^h, W_O^h, the final
// norm's gain and the projection) [M, H, E] per later block is built once per lens (kept when it
// fits the memory budget, else rebuilt per batch); per image the work is the attention rows times
// the activations ([H, N] x [N, M] per later block) and M small [B, H] x [H, E] products.
#include "model/forward.h"

#include <vector>

namespace vitscope {

enum class NeuronConvention { Reference, Exact };
const char* neuronConventionName(NeuronConvention c);
NeuronConvention parseNeuronConvention(const std::string& name);  // "reference" | "exact"; throws InputError

struct SecondOrderSettings {
    int layer = 0;  // the MLP block whose neurons are analysed
    NeuronConvention convention = NeuronConvention::Reference;
    double coefficient = 100.0;              // reference convention: the effects are scaled by coefficient / |output|
    int64_t cacheBytes = int64_t(1) << 30;  // budget for the image-independent maps kept between batches
};

struct SecondOrderEffects {
    at::Tensor effects;  // [B, M, E] float32: phi_n(image) for every neuron of the layer
    at::Tensor norms;    // [B, M]: |phi_n|
    at::Tensor output;   // [B, E]: the model's output (unnormalised)
};

class SecondOrderLens {
public:
    // Throws InputError for models other than plain ViTs with a class token, and for the last
    // block (no later attention: no second-order effect).
    SecondOrderLens(const Model& model, const SecondOrderSettings& settings);
    SecondOrderEffects compute(const at::Tensor& pixels) const;
    int neurons() const { return m_neurons; }
    int layer() const { return m_s.layer; }
    int64_t embedDim() const { return m_model.vision.embedDim(); }  // E of the effects
    NeuronConvention convention() const { return m_s.convention; }
    // Bytes of the image-independent maps kept (0 when they are rebuilt per batch).
    int64_t keptBytes() const;

private:
    at::Tensor buildMaps(int later) const;  // U for block later (> layer): [M, H, E]
    const Model& m_model;
    SecondOrderSettings m_s;
    int m_neurons = 0;
    at::Tensor m_write;               // [M, D] each neuron's write direction (LayerScale folded in; centred under exact)
    at::Tensor m_writeBias;           // [D] the MLP's output bias (LayerScale folded in)
    std::vector<at::Tensor> m_maps;   // per later block: U [M, H, E] (empty when over budget)
};

}  // namespace vitscope
