// Mutation fuzzing of the torch-free parsers: safetensors, .npy and the CLIP tokenizer.
// Every input must either parse or raise vitscope::Error; anything else (a crash, a sanitizer
// report, another exception type) fails the run. Usage:
//   fuzz_parsers --iterations N --seed S --oracle DIR
// Run under AddressSanitizer + UBSan with fuzz/run-fuzz.sh.
#include "error.h"
#include "io/file_util.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "mutator.h"
#include "text/tokenizer.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>

using namespace vitscope;

namespace {

struct Stats {
    long parsed = 0, rejected = 0;
};

template <typename Fn>
bool runOne(const std::vector<uint8_t>& input, Fn fn, Stats& stats) {
    try {
        fn(input);
        ++stats.parsed;
    } catch (const Error&) {
        ++stats.rejected;
    } catch (const std::exception& e) {
        std::cerr << "unexpected exception type: " << e.what() << "\n";
        return false;
    }
    return true;
}

std::vector<uint8_t> smallSafetensors() {
    std::map<std::string, TensorBlob> t;
    t["a"] = {DType::F32, {2, 3}, std::vector<uint8_t>(24, 1)};
    t["b"] = {DType::F16, {4}, std::vector<uint8_t>(8, 2)};
    t["c"] = {DType::I64, {1}, std::vector<uint8_t>(8, 3)};
    const std::string path = "/tmp/vitscope-fuzz-seed.safetensors";
    writeSafetensors(path, t, {{"format", "pt"}});
    return readFileBytes(path);
}

std::vector<uint8_t> smallNpy(DType dtype, std::vector<int64_t> shape) {
    NpyArray a;
    a.dtype = dtype;
    a.shape = shape;
    a.bytes.assign(static_cast<std::size_t>(a.count()) * dtypeSize(dtype), 5);
    const std::string path = "/tmp/vitscope-fuzz-seed.npy";
    writeNpy(path, a);
    return readFileBytes(path);
}

}  // namespace

int main(int argc, char** argv) {
    long iterations = 100000;
    uint64_t seed = 1;
    std::string oracle;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--iterations")) iterations = std::atol(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--seed")) seed = std::strtoull(argv[i + 1], nullptr, 10);
        else if (!std::strcmp(argv[i], "--oracle")) oracle = argv[i + 1];
    }
    std::vector<std::vector<uint8_t>> stSeeds{smallSafetensors()};
    std::vector<std::vector<uint8_t>> npySeeds{smallNpy(DType::F32, {3, 4}), smallNpy(DType::I64, {2, 77}),
                                               smallNpy(DType::F16, {5})};
    std::vector<std::vector<uint8_t>> textSeeds;
    for (const char* t : {"a photo of a cat", "Hello,   World!!  it's 3:45pm", "caf&eacute; &#x41;&amp;&lt;b&gt;",
                          "<|startoftext|>x<|endoftext|>", "größe 東京 🙂 ١٢٣"})
        textSeeds.emplace_back(t, t + std::strlen(t));
    std::string tokenizerPath;
    if (!oracle.empty()) {
        for (const char* f : {"/clip-tiny/decomp_embed.npy", "/clip-tiny/tokens.npy", "/vit-tiny/logits.npy"})
            npySeeds.push_back(readFileBytes(oracle + f));
        // The first 64 KiB of a real checkpoint: a realistic header with truncated data.
        std::vector<uint8_t> st = readFileBytes(oracle + "/vit-tiny/timm_vit.safetensors");
        st.resize(std::min<std::size_t>(st.size(), 65536));
        stSeeds.push_back(st);
        tokenizerPath = oracle + "/clip-tiny/hf";
    }
    Stats st, npy, tok;
    fuzz::Mutator mutator(seed);
    const auto start = std::chrono::steady_clock::now();
    for (long i = 0; i < iterations; ++i) {
        const auto& s = stSeeds[static_cast<std::size_t>(i) % stSeeds.size()];
        const std::vector<uint8_t> in = mutator.mutate(s);
        if (!runOne(in, [](const std::vector<uint8_t>& b) { parseSafetensors(b.data(), b.size(), "fuzz"); }, st)) return 1;
        const std::vector<uint8_t> n = mutator.mutate(npySeeds[static_cast<std::size_t>(i) % npySeeds.size()]);
        if (!runOne(n, [](const std::vector<uint8_t>& b) { parseNpy(b.data(), b.size(), "fuzz"); }, npy)) return 1;
    }
    if (!tokenizerPath.empty()) {
        const ClipTokenizer tokenizer = ClipTokenizer::fromPath(tokenizerPath);
        for (long i = 0; i < iterations; ++i) {
            const std::vector<uint8_t> t = mutator.mutate(textSeeds[static_cast<std::size_t>(i) % textSeeds.size()]);
            const bool ok = runOne(t, [&](const std::vector<uint8_t>& b) {
                const std::vector<int64_t> ids = tokenizer.tokenize(std::string(b.begin(), b.end()));
                for (int64_t id : ids)
                    if (id < 0 || id >= static_cast<int64_t>(tokenizer.vocabSize())) std::abort();
            }, tok);
            if (!ok) return 1;
        }
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "safetensors: " << st.parsed + st.rejected << " inputs (" << st.parsed << " parsed, " << st.rejected
              << " rejected)\n"
              << "npy: " << npy.parsed + npy.rejected << " inputs (" << npy.parsed << " parsed, " << npy.rejected
              << " rejected)\n"
              << "tokenizer: " << tok.parsed + tok.rejected << " inputs\n"
              << "time: " << secs << " s\n";
    return 0;
}
