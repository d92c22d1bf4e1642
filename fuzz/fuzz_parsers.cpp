// Mutation fuzzing of the torch-free parsers: safetensors, .npy, torch.save files (zip and
// legacy, through the restricted pickle reader), bare pickles, MATLAB level-5 files (ImageNet's
// devkit meta.mat) and the CLIP tokenizer.
// Every input must either parse or raise vitscope::Error; anything else (a crash, a sanitizer
// report, another exception type) fails the run. Usage:
//   fuzz_parsers --iterations N --seed S --oracle DIR
// Run under AddressSanitizer + UBSan with fuzz/run-fuzz.sh.
#include "error.h"
#include "io/file_util.h"
#include "io/matlab_v5.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "io/torch_file.h"
#include "io/zip_archive.h"
#include "mutator.h"
#include "torch_save_writer.h"
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

// Small torch.save files of both formats: shared storage, a view, fp16, a training wrapper.
std::vector<std::vector<uint8_t>> torchSeeds() {
    const std::string floats = test::floatBytes({1, 2, 3, 4, 5, 6});
    const std::string halves("\x00\x3c\x00\xc0", 4);
    const std::vector<std::pair<std::string, test::FakeTensor>> tensors{
        {"a", {"0", "FloatStorage", 6, 0, {2, 3}, {3, 1}}},
        {"b", {"0", "FloatStorage", 6, 1, {2}, {2}}},
        {"h", {"1", "HalfStorage", 2, 0, {2}, {1}}}};
    std::vector<std::vector<uint8_t>> seeds;
    seeds.push_back(test::torchZip(test::stateDictPickle(tensors), {{"0", floats}, {"1", halves}}));
    seeds.push_back(test::torchLegacy(test::stateDictPickle(tensors, true), {{"0", floats}, {"1", halves}}, {4, 2}));
    test::PickleWriter w;
    w.op('}').mark().str("model");
    const std::string sd = test::stateDictPickle({{"module.backbone.x", {"0", "FloatStorage", 6, 0, {6}, {1}}}});
    w.raw(sd.substr(2, sd.size() - 3));  // without PROTO and STOP
    w.str("args").global("argparse", "Namespace").op(')').op('\x81').op('}').str("lr").raw("G?\xe0\x00\x00\x00\x00\x00\x00").op('s').op('b');
    w.str("epoch").integer(300).op('u');
    seeds.push_back(test::torchZip(w.finish(), {{"0", floats}}));
    return seeds;
}

// MAT-files: a devkit-like struct array (uncompressed, as writeMatV5 writes it) and scipy's
// compressed meta.mat of the tests' tiny devkit.
std::vector<std::vector<uint8_t>> matSeeds() {
    std::vector<MatValue> elements;
    for (int i = 0; i < 3; ++i)
        for (MatValue v : {matScalar(i + 1), matString("n0" + std::to_string(i)), matString("a, b"), matScalar(0)}) elements.push_back(v);
    MatValue cell;
    cell.kind = MatValue::Kind::Cell;
    cell.dims = {1, 2};
    cell.elements = {matString("x"), matScalar(2.5)};
    const std::string path = "/tmp/vitscope-fuzz-seed.mat";
    writeMatV5(path, {{"synsets", matStruct({"ILSVRC2012_ID", "WNID", "words", "num_children"}, 3, elements)}, {"c", cell}});
    std::vector<std::vector<uint8_t>> seeds{readFileBytes(path)};
    seeds.push_back(readFileBytes(VITSCOPE_SOURCE_DIR "/tests/data/imagenet-devkit/ILSVRC2012_devkit_t12/data/meta.mat"));
    return seeds;
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
    std::vector<std::vector<uint8_t>> torchFiles = torchSeeds(), pickles;
    std::string tokenizerPath;
    if (!oracle.empty()) {
        // The object pickle of a real torch.save state dict and the head of a legacy file.
        const std::vector<uint8_t> real = readFileBytes(oracle + "/layouts/tv_ordered.pth");
        const ZipArchive zip = parseZip(real.data(), real.size(), "seed");
        const ZipEntry* pkl = zip.find("tv_ordered/data.pkl");
        if (pkl) pickles.emplace_back(zip.bytes(*pkl), zip.bytes(*pkl) + pkl->size);
        std::vector<uint8_t> legacy = readFileBytes(oracle + "/layouts/tv_legacy.pth");
        legacy.resize(std::min<std::size_t>(legacy.size(), 16384));
        torchFiles.push_back(legacy);
        for (const char* f : {"/clip-tiny/decomp_embed.npy", "/clip-tiny/tokens.npy", "/vit-tiny/logits.npy"})
            npySeeds.push_back(readFileBytes(oracle + f));
        // The first 64 KiB of a real checkpoint: a realistic header with truncated data.
        std::vector<uint8_t> st = readFileBytes(oracle + "/vit-tiny/timm_vit.safetensors");
        st.resize(std::min<std::size_t>(st.size(), 65536));
        stSeeds.push_back(st);
        tokenizerPath = oracle + "/clip-tiny/hf";
    }
    for (const auto& f : torchSeeds()) {
        // The object pickle of each seed on its own.
        if (looksLikeZip(f.data(), f.size())) {
            const ZipArchive zip = parseZip(f.data(), f.size(), "seed");
            pickles.emplace_back(zip.bytes(zip.entries[0]), zip.bytes(zip.entries[0]) + zip.entries[0].size);
        }
    }
    const std::vector<std::vector<uint8_t>> mats = matSeeds();
    Stats st, npy, tok, torchFile, pickle, mat;
    fuzz::Mutator mutator(seed);
    const auto start = std::chrono::steady_clock::now();
    for (long i = 0; i < iterations; ++i) {
        const auto& s = stSeeds[static_cast<std::size_t>(i) % stSeeds.size()];
        const std::vector<uint8_t> in = mutator.mutate(s);
        if (!runOne(in, [](const std::vector<uint8_t>& b) { parseSafetensors(b.data(), b.size(), "fuzz"); }, st)) return 1;
        const std::vector<uint8_t> n = mutator.mutate(npySeeds[static_cast<std::size_t>(i) % npySeeds.size()]);
        if (!runOne(n, [](const std::vector<uint8_t>& b) { parseNpy(b.data(), b.size(), "fuzz"); }, npy)) return 1;
        const std::vector<uint8_t> t = mutator.mutate(torchFiles[static_cast<std::size_t>(i) % torchFiles.size()]);
        const bool torchOk = runOne(t, [](const std::vector<uint8_t>& b) {
            const TorchFile tf = parseTorchFile(b.data(), b.size(), "fuzz");
            // Every tensor's storage span must lie inside the input: read its last byte.
            for (const PickleTensor& pt : tf.pickle.tensors) {
                uint64_t base = 0;
                const TorchStorage& s = tf.storageOf(pt, base);
                if (base + pt.storageNumel > s.numel) std::abort();
                const std::size_t bytes = static_cast<std::size_t>(s.numel) * storageDTypeSize(s.dtype);
                if (bytes > 0 && (s.data < b.data() || s.data + bytes > b.data() + b.size())) std::abort();
            }
        }, torchFile);
        if (!torchOk) return 1;
        const std::vector<uint8_t> p = mutator.mutate(pickles[static_cast<std::size_t>(i) % pickles.size()]);
        if (!runOne(p, [](const std::vector<uint8_t>& b) { readPickle(b.data(), b.size(), "fuzz"); }, pickle)) return 1;
        const std::vector<uint8_t> m = mutator.mutate(mats[static_cast<std::size_t>(i) % mats.size()]);
        if (!runOne(m, [](const std::vector<uint8_t>& b) { parseMatV5(b.data(), b.size(), "fuzz"); }, mat)) return 1;
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
              << "torch files: " << torchFile.parsed + torchFile.rejected << " inputs (" << torchFile.parsed
              << " parsed, " << torchFile.rejected << " rejected)\n"
              << "pickles: " << pickle.parsed + pickle.rejected << " inputs (" << pickle.parsed << " parsed, "
              << pickle.rejected << " rejected)\n"
              << "MAT-files: " << mat.parsed + mat.rejected << " inputs (" << mat.parsed << " parsed, " << mat.rejected << " rejected)\n"
              << "tokenizer: " << tok.parsed + tok.rejected << " inputs\n"
              << "time: " << secs << " s\n";
    return 0;
}
