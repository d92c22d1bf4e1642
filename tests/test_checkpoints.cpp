// Checkpoint files as users have them: every layout in ../shared/oracle/layouts (written by
// torch's own save path, timm, Hugging Face) gives the reference outputs through embed and
// decompose; torch.save files built here by hand check views, shared storages, dtypes and the
// legacy format; hostile and broken files are refused with one-line errors.
#include "error.h"
#include "io/checkpoint.h"
#include "io/file_util.h"
#include "io/pickle.h"
#include "io/tensor_io.h"
#include "io/torch_file.h"
#include "model/forward.h"
#include "model/loader.h"
#include "model/random_weights.h"
#include "test_util.h"
#include "torch_save_writer.h"
#include "../fuzz/mutator.h"

#include <QtTest/QtTest>

#include <filesystem>

using namespace vitscope;
using vitscope::test::maxAbsDiff;
using vitscope::test::minRowCosine;
using vitscope::test::oracle;
namespace fs = std::filesystem;

namespace {

template <typename Fn>
QString errorOf(Fn fn) {
    try {
        fn();
    } catch (const Error& e) {
        return QString::fromStdString(e.what());
    }
    return {};
}

// The largest |a - b| relative to the largest |b|.
double relativeErr(const at::Tensor& a, const at::Tensor& b) {
    return maxAbsDiff(a, b) / b.abs().max().item<double>();
}

}  // namespace

class TestCheckpoints : public QObject {
    Q_OBJECT

    QTemporaryDir m_dir;
    std::string path(const std::string& name) const { return (fs::path(m_dir.path().toStdString()) / name).string(); }
    std::string write(const std::string& name, const std::vector<uint8_t>& bytes) const {
        writeFileAtomic(path(name), bytes);
        return path(name);
    }

private slots:
    // ---- every layout of the oracle's layouts/ folder -----------------------------------------
    void vitLayouts_data() {
        QTest::addColumn<QString>("file");
        QTest::addColumn<bool>("reduced");     // fp16 / bf16 weights: compared by cosine
        QTest::addColumn<bool>("classifier");  // the file carries the classification head
        QTest::addColumn<QString>("format");
        QTest::addColumn<QString>("key");
        QTest::newRow("torchvision OrderedDict") << "tv_ordered.pth" << false << true << "torch-zip" << "";
        QTest::newRow("legacy torch.save") << "tv_legacy.pth" << false << true << "torch-legacy" << "";
        QTest::newRow("fp16 HalfStorage") << "tv_fp16.pth" << true << true << "torch-zip" << "";
        QTest::newRow("DeiT training checkpoint") << "deit_model.pth" << false << true << "torch-zip" << "model";
        QTest::newRow("DINO training checkpoint") << "dino_full.pth" << false << false << "torch-zip" << "teacher";
        QTest::newRow("bf16 safetensors") << "timm_bf16.safetensors" << true << true << "safetensors" << "";
    }

    void vitLayouts() {
        QFETCH(QString, file);
        QFETCH(bool, reduced);
        QFETCH(bool, classifier);
        QFETCH(QString, format);
        QFETCH(QString, key);
        at::NoGradGuard guard;
        const Model model = loadModel(oracle("layouts/" + file.toStdString()));
        QCOMPARE(QString::fromStdString(model.info.format), format);
        QCOMPARE(QString::fromStdString(model.info.wrapperKey), key);
        QCOMPARE(model.vision.layers(), 3);
        QCOMPARE(model.vision.heads(), 2);
        const at::Tensor pixels = readNpyTensor(oracle("vit-tiny/pixels.npy"));
        const VisionResult r = encodeImages(model, pixels);
        const at::Tensor features = readNpyTensor(oracle("vit-tiny/features.npy"));
        const at::Tensor logits = readNpyTensor(oracle("vit-tiny/logits.npy"));
        if (reduced) {
            const double cf = minRowCosine(r.output, features);
            qInfo("features min cosine %.6f", cf);
            QVERIFY(cf > 0.995);
        } else {
            const double ef = maxAbsDiff(r.output, features);
            qInfo("features max abs diff %.3g", ef);
            QVERIFY(ef < 1e-4);
        }
        QCOMPARE(r.logits.defined(), classifier);
        if (classifier) {
            if (reduced) {
                QVERIFY(minRowCosine(r.logits, logits) > 0.995);
            } else {
                QVERIFY(maxAbsDiff(r.logits, logits) < 1e-4);
            }
        }
        const Decomposition d = decomposeImages(model, pixels, {true, Convention::Exact});
        qInfo("decomposition sum identity %.3g", d.maxAbsError);
        QVERIFY(d.maxAbsError < 1e-4);
        QVERIFY(maxAbsDiff(d.output, r.output) < 1e-5);
    }

    void clipLayouts_data() {
        QTest::addColumn<QString>("dir");
        QTest::addColumn<int>("shards");
        QTest::newRow("pytorch_model.bin") << "hf_bin" << 1;
        QTest::newRow("sharded safetensors") << "hf_sharded" << 2;
    }

    void clipLayouts() {
        QFETCH(QString, dir);
        QFETCH(int, shards);
        at::NoGradGuard guard;
        const Model model = loadModel(oracle("layouts/" + dir.toStdString()));
        QVERIFY(model.isClip());
        QCOMPARE(model.info.shards, shards);
        const at::Tensor pixels = readNpyTensor(oracle("clip-tiny/pixels.npy"));
        const at::Tensor expected = readNpyTensor(oracle("clip-tiny/image_embeds.npy"));
        const VisionResult r = encodeImages(model, pixels);
        const double err = relativeErr(r.output, expected);
        qInfo("image embeds relative err %.3g", err);
        QVERIFY(err < 1e-4);
        const Decomposition d = decomposeImages(model, pixels, {true, Convention::Exact});
        QVERIFY(maxAbsDiff(d.heads.sum(3), decomposeImages(model, pixels).heads) < 1e-5);
        QVERIFY(d.maxAbsError < 1e-4);
        // Text side too: same numbers as the oracle's text embeddings.
        const at::Tensor texts = encodeTexts(model, readNpyTensor(oracle("clip-tiny/tokens.npy")));
        QVERIFY(relativeErr(texts, readNpyTensor(oracle("clip-tiny/text_embeds.npy"))) < 1e-4);
    }

    // ---- training checkpoints --------------------------------------------------------------
    void dinoKeysAndPrefixes() {
        const Checkpoint teacher = loadCheckpoint(oracle("layouts/dino_full.pth"));
        QCOMPARE(teacher.wrapperKey, std::string("teacher"));
        QCOMPARE(teacher.wrapperCandidates, (std::vector<std::string>{"student", "teacher"}));
        QCOMPARE(teacher.strippedPrefix, std::string("backbone."));
        QVERIFY(teacher.tensors.count("blocks.0.attn.qkv.weight"));
        QVERIFY(!teacher.ignored.empty());
        for (const auto& name : teacher.ignored) QVERIFY2(name.rfind("head.", 0) == 0, name.c_str());
        for (const auto& [name, t] : teacher.tensors) QVERIFY2(name.rfind("head.", 0) != 0, name.c_str());

        CheckpointOptions o;
        o.checkpointKey = "student";
        const Checkpoint student = loadCheckpoint(oracle("layouts/dino_full.pth"), o);
        QCOMPARE(student.wrapperKey, std::string("student"));
        QCOMPARE(student.strippedPrefix, std::string("module.backbone."));
        QCOMPARE(student.tensors.size(), teacher.tensors.size());
        const Model m = loadModel(oracle("layouts/dino_full.pth"), o);
        QCOMPARE(m.info.wrapperKey, std::string("student"));

        o.checkpointKey = "optimizer";
        const QString message = errorOf([&] { loadCheckpoint(oracle("layouts/dino_full.pth"), o); });
        QVERIFY2(message.contains("dino_full.pth") && message.contains("student, teacher"), qPrintable(message));
        o.checkpointKey = "model";
        QVERIFY(errorOf([&] { loadCheckpoint(oracle("layouts/tv_ordered.pth"), o); }).contains("plain state dict"));
    }

    void deitIgnoresOptimizerAndArgs() {
        const Checkpoint c = loadCheckpoint(oracle("layouts/deit_model.pth"));
        QCOMPARE(c.wrapperKey, std::string("model"));
        QVERIFY(c.tensors.count("head.weight"));
        const StateDict reference = readSafetensorsFloat(oracle("vit-tiny/timm_vit.safetensors"));
        QCOMPARE(c.tensors.size(), reference.size());
        for (const auto& [name, t] : reference) {
            QVERIFY2(c.tensors.count(name), name.c_str());
            QVERIFY2(at::equal(c.tensors.at(name), t), name.c_str());
        }
    }

    void opaqueObjectsBesideTheWeights() {
        // A training checkpoint's other entries (functools.partial hyper-parameters, an unknown
        // class's instance, a set, a big integer) are kept as opaque values and do not stop the load.
        test::PickleWriter w;
        w.op('}').mark();
        w.str("state_dict");
        const std::string sd = test::stateDictPickle({{"w", {"0", "FloatStorage", 4, 0, {4}, {1}}}});
        w.raw(sd.substr(2, sd.size() - 3));
        w.str("hyper_parameters").global("functools", "partial").mark().global("torch.optim", "Adam").op('t').op('R');
        w.str("callbacks").global("my_project.callbacks", "EarlyStop").op(')').op('\x81').op('}').str("patience").integer(3).op('s').op('b');
        w.str("seen").global("builtins", "set").mark().op(']').mark().integer(1).integer(2).op('e').op('t').op('R');
        w.str("step").raw(std::string("\x8a\x0b") + std::string(11, '\x7f'));
        w.op('u');
        const Checkpoint c = loadCheckpoint(write("lightning.ckpt", test::torchZip(w.finish(), {{"0", test::floatBytes({1, 2, 3, 4})}})));
        QCOMPARE(c.wrapperKey, std::string("state_dict"));
        QVERIFY(at::equal(c.tensors.at("w"), at::tensor(std::vector<float>{1, 2, 3, 4})));
    }

    // ---- hand-built torch.save files: views, shared storages, dtypes, legacy ----------------------
    void viewsAndSharedStorage_data() {
        QTest::addColumn<bool>("legacy");
        QTest::newRow("zip") << false;
        QTest::newRow("legacy") << true;
    }

    void viewsAndSharedStorage() {
        QFETCH(bool, legacy);
        std::vector<float> values(12);
        for (int i = 0; i < 12; ++i) values[static_cast<std::size_t>(i)] = 0.5f * static_cast<float>(i) - 1.0f;
        const std::vector<uint16_t> halves{0x3C00, 0xC000, 0x3800};  // 1, -2, 0.5 as IEEE half
        const std::string halfBytes(reinterpret_cast<const char*>(halves.data()), 6);
        const std::vector<int64_t> longs{7, -3};
        const std::string longBytes(reinterpret_cast<const char*>(longs.data()), 16);
        const std::vector<std::pair<std::string, test::FakeTensor>> tensors{
            {"module.a", {"s0", "FloatStorage", 12, 0, {3, 4}, {4, 1}}},
            {"module.t", {"s0", "FloatStorage", 12, 0, {4, 3}, {1, 4}}},  // a transposed, same storage
            {"module.c", {"s0", "FloatStorage", 12, 2, {5}, {2}}},         // offset and stride
            {"module.h", {"s1", "HalfStorage", 3, 0, {3}, {1}}},
            {"module.n", {"s2", "LongStorage", 2, 1, {}, {}}},             // a 0-d view of element 1
        };
        const std::string pickle = test::stateDictPickle(tensors, legacy);
        const std::string file =
            legacy ? write("views.pth", test::torchLegacy(pickle, {{"s0", test::floatBytes(values)}, {"s1", halfBytes}, {"s2", longBytes}},
                                                          {4, 2, 8}))
                   : write("views.pth", test::torchZip(pickle, {{"s0", test::floatBytes(values)}, {"s1", halfBytes}, {"s2", longBytes}}));
        const Checkpoint c = loadCheckpoint(file);
        QCOMPARE(c.format, legacy ? CheckpointFormat::TorchLegacy : CheckpointFormat::TorchPickle);
        QCOMPARE(c.strippedPrefix, std::string("module."));
        const at::Tensor base = at::tensor(values);
        QVERIFY(at::equal(c.tensors.at("a"), base.reshape({3, 4})));
        QVERIFY(at::equal(c.tensors.at("t"), base.reshape({3, 4}).t()));
        QVERIFY(at::equal(c.tensors.at("c"), base.slice(0, 2, 12, 2)));
        QCOMPARE(c.tensors.at("h").scalar_type(), at::kFloat);
        QVERIFY(at::equal(c.tensors.at("h"), at::tensor(std::vector<float>{1.0f, -2.0f, 0.5f})));
        QCOMPARE(c.tensors.at("n").scalar_type(), at::kLong);
        QCOMPARE(c.tensors.at("n").dim(), int64_t(0));
        QCOMPARE(c.tensors.at("n").item<int64_t>(), int64_t(-3));
        QCOMPARE(c.storedDTypes.at("float32"), 3);
        QCOMPARE(c.storedDTypes.at("float16"), 1);
    }

    void randomConfigurationsRoundTrip_data() {
        QTest::addColumn<int>("layout");
        QTest::addColumn<bool>("legacy");
        QTest::addColumn<bool>("half");
        QTest::newRow("torchvision zip") << int(RandomLayout::Torchvision) << false << false;
        QTest::newRow("dinov2 legacy") << int(RandomLayout::Dinov2) << true << false;
        QTest::newRow("hf clip zip fp16") << int(RandomLayout::HfClip) << false << true;
    }

    void randomConfigurationsRoundTrip() {
        // Shapes the oracle does not have (width 96, 3 heads, 5 layers, registers, LayerScale),
        // written in torch.save's format and read back tensor for tensor.
        QFETCH(int, layout);
        QFETCH(bool, legacy);
        QFETCH(bool, half);
        RandomVitSpec spec;
        spec.layout = static_cast<RandomLayout>(layout);
        spec.width = 96;
        spec.heads = 3;
        spec.layers = 5;
        spec.imageSize = 48;
        spec.patchSize = 8;
        spec.registers = 4;
        spec.layerScale = spec.layout == RandomLayout::Dinov2;
        spec.vocabSize = 300;
        spec.seed = 11;
        StateDict sd = randomVitStateDict(spec);
        std::vector<std::pair<std::string, test::FakeTensor>> records;
        std::vector<std::pair<std::string, std::string>> storages;
        std::vector<std::size_t> sizes;
        for (auto& [name, t] : sd) {
            if (half) t = t.to(at::kHalf).to(at::kFloat);  // the values an fp16 file can hold
            const at::Tensor stored = half ? t.to(at::kHalf).contiguous() : t.contiguous();
            const std::string key = std::to_string(records.size());
            std::vector<int64_t> strides(stored.strides().begin(), stored.strides().end());
            records.push_back({"module." + name, {key, half ? "HalfStorage" : "FloatStorage", stored.numel(), 0,
                                                  stored.sizes().vec(), strides}});
            storages.emplace_back(key, std::string(static_cast<const char*>(stored.data_ptr()), stored.nbytes()));
            sizes.push_back(half ? 2 : 4);
        }
        const std::string pickle = test::stateDictPickle(records, legacy);
        const std::vector<uint8_t> bytes =
            legacy ? test::torchLegacy(pickle, storages, sizes)
                   : test::torchZip(pickle, std::map<std::string, std::string>(storages.begin(), storages.end()));
        const Checkpoint c = loadCheckpoint(write("random.pth", bytes));
        QCOMPARE(c.tensors.size(), sd.size());
        for (const auto& [name, t] : sd) {
            QVERIFY2(c.tensors.count(name), name.c_str());
            QVERIFY2(at::equal(c.tensors.at(name), t), name.c_str());
        }
        nlohmann::json config = {{"num_heads", 3}, {"vision_config", {{"num_attention_heads", 3}}},
                                 {"text_config", {{"num_attention_heads", 1}}}};
        const Model model = buildModel(c.tensors, config, "random.pth");
        QCOMPARE(model.vision.layers(), 5);
        QCOMPARE(model.vision.heads(), 3);
        QCOMPARE(model.vision.numRegisters(), spec.layout == RandomLayout::Dinov2 ? 4 : 0);
    }

    // ---- bad input -------------------------------------------------------------------------------
    void codeCarryingPicklesAreRefused_data() {
        QTest::addColumn<QByteArray>("pickle");
        QTest::addColumn<QString>("names");
        // protocol 0: cposix\nsystem\n(S'...'\ntR.
        const std::string marker = path("pwned");
        QTest::newRow("posix.system REDUCE")
            << QByteArray::fromStdString("cposix\nsystem\n(S'touch " + marker + "'\ntR.") << "posix.system";
        test::PickleWriter w;
        w.op('}').str("args").raw("\x8c\x08" "builtins" "\x8c\x04" "eval" "\x93").mark().str("__import__('os')").op('t').op('R').op('s');
        QTest::newRow("builtins.eval via STACK_GLOBAL") << QByteArray::fromStdString(w.finish()) << "builtins.eval";
        test::PickleWriter v;
        v.op('}').str("model").global("subprocess", "Popen").mark().str("id").op('t').op('\x81').op('s');
        QTest::newRow("subprocess.Popen NEWOBJ") << QByteArray::fromStdString(v.finish()) << "subprocess.Popen";
        test::PickleWriter m;
        m.op('}').str("x").global("operator", "methodcaller").mark().str("system").str("id").op('t').op('R').op('s');
        QTest::newRow("operator.methodcaller") << QByteArray::fromStdString(m.finish()) << "operator.methodcaller";
    }

    void codeCarryingPicklesAreRefused() {
        QFETCH(QByteArray, pickle);
        QFETCH(QString, names);
        const std::string file = write("evil.pth", test::torchZip(pickle.toStdString(), {}));
        const QString message = errorOf([&] { loadCheckpoint(file); });
        QVERIFY2(message.startsWith(QString::fromStdString(file) + ": ") && message.contains(names) &&
                     !message.contains('\n'),
                 qPrintable(message));
        QVERIFY(!fs::exists(path("pwned")));
        // The same through the model loader and with the pickle as a legacy-format body.
        QVERIFY(errorOf([&] { loadModel(file); }).contains(names));
    }

    void brokenFilesGiveOneLineErrors_data() {
        QTest::addColumn<QString>("what");
        QTest::addColumn<QString>("expected");
        QTest::newRow("zip cut short") << "zip-cut" << "truncated";
        QTest::newRow("legacy cut short") << "legacy-cut" << "truncated";
        QTest::newRow("view past its storage") << "view-oob" << "reaches element";
        QTest::newRow("missing storage record") << "no-record" << "missing";
        QTest::newRow("root is a list") << "list-root" << "does not hold a state dict";
        QTest::newRow("list holding itself") << "cycle" << "does not hold a state dict";
        QTest::newRow("no tensors") << "no-tensors" << "holds no state dict";
        QTest::newRow("unknown opcode") << "bad-opcode" << "unknown opcode";
        QTest::newRow("hostile broadcast stride") << "stride0" << "far more elements";
        QTest::newRow("not a checkpoint") << "text" << "not a checkpoint";
        QTest::newRow("one list copied by many calls") << "quadratic" << "too much work";
    }

    void brokenFilesGiveOneLineErrors() {
        QFETCH(QString, what);
        QFETCH(QString, expected);
        const std::string floats = test::floatBytes({1, 2, 3, 4});
        std::vector<uint8_t> bytes;
        auto one = [&](test::FakeTensor t) { return test::stateDictPickle({{"w", t}}); };
        if (what == "zip-cut") {
            bytes = readFileBytes(oracle("layouts/tv_ordered.pth"));
            bytes.resize(bytes.size() / 2);
        } else if (what == "legacy-cut") {
            bytes = readFileBytes(oracle("layouts/tv_legacy.pth"));
            bytes.resize(bytes.size() - 1000);
        } else if (what == "view-oob") {
            bytes = test::torchZip(one({"0", "FloatStorage", 4, 2, {3}, {1}}), {{"0", floats}});
        } else if (what == "no-record") {
            bytes = test::torchZip(one({"0", "FloatStorage", 4, 0, {4}, {1}}), {});
        } else if (what == "list-root") {
            bytes = test::torchZip(test::PickleWriter().op(']').finish(), {});
        } else if (what == "cycle") {
            bytes = test::torchZip(test::PickleWriter().op(']').raw(std::string("q\0h\0", 4)).op('a').finish(), {});
        } else if (what == "no-tensors") {
            bytes = test::torchZip(test::PickleWriter().op('}').str("epoch").integer(3).op('s').finish(), {});
        } else if (what == "bad-opcode") {
            bytes = test::torchZip(test::PickleWriter().raw("\xfe").finish(), {});
        } else if (what == "stride0") {
            bytes = test::torchZip(one({"0", "FloatStorage", 4, 0, {100000, 100000}, {0, 0}}), {{"0", floats}});
        } else if (what == "quadratic") {
            // A list of 20,000 pairs turned into an OrderedDict 20,000 times (4e8 copies for 260 KB).
            test::PickleWriter w;
            w.op(']').raw(std::string("q\0", 2)).mark();
            for (int i = 0; i < 20000; ++i) w.mark().integer(1).integer(2).op('t');
            w.op('e').global("collections", "OrderedDict").raw(std::string("q\1", 2)).op('0');
            for (int i = 0; i < 20000; ++i) w.raw(std::string("h\1h\0", 4)).op('\x85').op('R').op('0');
            w.op(']');
            bytes = test::torchZip(w.finish(), {});
        } else {
            const std::string t = "this is a text file\n";
            bytes.assign(t.begin(), t.end());
        }
        const std::string file = write("broken.pth", bytes);
        const QString message = errorOf([&] { loadCheckpoint(file); });
        QVERIFY2(message.startsWith(QString::fromStdString(file) + ": ") && message.contains(expected) &&
                     !message.contains('\n'),
                 qPrintable(message));
    }

    // A safetensors header of 128 (or 384, ...) bytes starts the file with 0x80, pickle's PROTO
    // opcode: it is still read as safetensors, under any file name.
    void safetensorsHeaderOf128Bytes() {
        std::string header = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
        header.resize(128, ' ');
        std::vector<uint8_t> bytes(8, 0);
        bytes[0] = 0x80;
        bytes.insert(bytes.end(), header.begin(), header.end());
        const float values[2] = {1.5f, -2.0f};
        const auto* raw = reinterpret_cast<const uint8_t*>(values);
        bytes.insert(bytes.end(), raw, raw + sizeof values);
        for (const char* name : {"h128.safetensors", "h128.bin"}) {
            const Checkpoint ck = loadCheckpoint(write(name, bytes));
            QCOMPARE(ck.format, CheckpointFormat::Safetensors);
            QCOMPARE(ck.tensors.at("w")[1].item<float>(), -2.0f);
        }
    }

    void missingShardIsNamed() {
        const fs::path dir = path("sharded");
        fs::create_directories(dir);
        for (const char* f : {"config.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors"})
            fs::copy_file(oracle(std::string("layouts/hf_sharded/") + f), dir / f);
        const QString message = errorOf([&] { loadModel(dir.string()); });
        QVERIFY2(message.contains("model-00002-of-00002.safetensors") && message.contains("missing"), qPrintable(message));
        // Shards without their index are not read as one model.
        fs::remove(dir / "model.safetensors.index.json");
        const QString noIndex = errorOf([&] { loadModel(dir.string()); });
        QVERIFY2(noIndex.contains("no index file"), qPrintable(noIndex));
    }

    // ---- bounded fuzz (the long run is fuzz/run-fuzz.sh) ------------------------------------------
    void boundedFuzz() {
        const std::vector<float> values{1, 2, 3, 4, 5, 6};
        const std::vector<uint8_t> zip = test::torchZip(
            test::stateDictPickle({{"a", {"0", "FloatStorage", 6, 0, {2, 3}, {3, 1}}}, {"b", {"0", "FloatStorage", 6, 1, {2}, {2}}}}),
            {{"0", test::floatBytes(values)}});
        const std::vector<uint8_t> legacy = test::torchLegacy(
            test::stateDictPickle({{"a", {"0", "FloatStorage", 6, 0, {6}, {1}}}}, true), {{"0", test::floatBytes(values)}}, {4});
        fuzz::Mutator mutator(7);
        int parsed = 0, rejected = 0;
        for (int i = 0; i < 3000; ++i) {
            const std::vector<uint8_t> in = mutator.mutate(i % 2 ? zip : legacy);
            try {
                const TorchFile tf = parseTorchFile(in.data(), in.size(), "fuzz");
                for (const PickleTensor& t : tf.pickle.tensors) {
                    uint64_t base = 0;
                    const TorchStorage& s = tf.storageOf(t, base);
                    QVERIFY(base + t.storageNumel <= s.numel);
                }
                ++parsed;
            } catch (const FormatError&) {
                ++rejected;
            }
        }
        qInfo("bounded fuzz: %d parsed, %d rejected", parsed, rejected);
        QVERIFY(parsed > 0 && rejected > 0);
    }
};

QTEST_GUILESS_MAIN(TestCheckpoints)
#include "test_checkpoints.moc"
