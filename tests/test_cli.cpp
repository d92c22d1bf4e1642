// vitscope-cli's contract: command names, output files and layouts, exit codes.
#include "analysis/alignment.h"
#include "analysis/cache.h"
#include "analysis/text_embed.h"
#include "analysis/heatmap.h"
#include "analysis/neurons.h"
#include "analysis/second_order.h"
#include "analysis/labels.h"
#include "analysis/localisation.h"
#include "analysis/sae.h"
#include "image/codec.h"
#include "io/file_util.h"
#include "io/imagenet_seg.h"
#include "io/tensor_io.h"
#include "image/preprocess.h"
#include "model/forward.h"
#include "model/loader.h"
#include "model/precision.h"
#include "model/random_weights.h"
#include "resources.h"
#include "test_util.h"

#include <QtTest/QtTest>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

using namespace vitscope;
using vitscope::test::maxAbsDiff;
using vitscope::test::oracle;
using vitscope::test::source;

namespace {

struct Run {
    int code = -1;
    QString out, err;
};

// With extra environment variables (a Slurm job array's task).
Run cliWith(const QStringList& args, const QMap<QString, QString>& env) {
    QProcess p;
    QProcessEnvironment e = QProcessEnvironment::systemEnvironment();
    for (auto it = env.begin(); it != env.end(); ++it) e.insert(it.key(), it.value());
    p.setProcessEnvironment(e);
    p.start(VITSCOPE_CLI, args);
    Run r;
    if (!p.waitForFinished(120000)) return r;
    r.code = p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
    r.out = QString::fromUtf8(p.readAllStandardOutput());
    r.err = QString::fromUtf8(p.readAllStandardError());
    return r;
}

Run cli(const QStringList& args) { return cliWith(args, {}); }

QString q(const std::string& s) { return QString::fromStdString(s); }

// neurons ablate's table as the in-process meter gives it: the class folders of `val` in label
// order (their names the prompts), the lens of `layer` in `convention` on all images at once, the
// training statistics of the describe output `describe`.
std::vector<std::pair<std::string, double>> inProcessNeuronAblation(const Model& model, const QString& val, const QString& describe, int layer,
                                                                    NeuronConvention convention) {
    std::vector<std::string> images, names;
    std::vector<int64_t> labels;
    const QStringList classes = QDir(val).entryList(QDir::Dirs | QDir::NoDotAndDotDot, QDir::Name);
    for (int c = 0; c < classes.size(); ++c) {
        names.push_back(classes[c].toStdString());
        for (const QString& f : QDir(val + "/" + classes[c]).entryList(QDir::Files, QDir::Name)) {
            images.push_back((val + "/" + classes[c] + "/" + f).toStdString());
            labels.push_back(c);
        }
    }
    NeuronDirections stats;
    stats.mean = readNpyTensor((describe + "/mean.npy").toStdString());
    stats.topNorms = readNpyTensor((describe + "/top_norms.npy").toStdString());
    stats.directions = readNpyTensor((describe + "/directions.npy").toStdString());
    NeuronAblationMeter meter(stats, TextEncoder(model).encodeEnsemble(names, {}), 100.0, convention);
    SecondOrderSettings s;
    s.layer = layer;
    s.convention = convention;
    const SecondOrderEffects e = SecondOrderLens(model, s).compute(loadAndPreprocess(images, model.preprocess));
    meter.add(e.effects, e.output, at::tensor(labels, at::kLong));
    return meter.top1();
}

// The first row of results.json's `rows` that differs from `expected` (name or top-1 beyond 1e-9); empty when none does.
QString ablationRowsDiffer(const nlohmann::json& rows, const std::vector<std::pair<std::string, double>>& expected) {
    if (rows.size() != expected.size()) return QString("%1 rows, expected %2").arg(rows.size()).arg(expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i)
        if (rows[i]["row"].get<std::string>() != expected[i].first || std::abs(rows[i]["top1"].get<double>() - expected[i].second) >= 1e-9)
            return QString("%1: %2 vs %3").arg(expected[i].first.c_str()).arg(rows[i]["top1"].get<double>()).arg(expected[i].second);
    return {};
}

}  // namespace

class TestCli : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    QString path(const char* name) { return m_dir.path() + "/" + name; }

private slots:
    // --precision through the shared model options: a bf16 cache records it and the analyses that
    // open it say so; a masked CPU refuses bf16 in one line naming the device; tf32 is CUDA's.
    void precisionFlag() {
        const QString clip = QString(VITSCOPE_SOURCE_DIR) + "/models/shapes-clip", pixels = q(oracle("vit-tiny/pixels.npy"));
        const QString model = q(oracle("vit-tiny/timm_vit.safetensors"));
        Run r = cliWith({"decompose", "--model", model, "--pixels", pixels, "--out", path("p-bf16"), "--precision", "bf16"},
                        {{"VITSCOPE_MASK_CPU_BF16", "1"}});
        QCOMPARE(r.code, 2);
        QVERIFY2(r.err.trimmed().contains("CPU (") && !r.err.trimmed().contains('\n'), qPrintable(r.err));
        r = cli({"decompose", "--model", model, "--pixels", pixels, "--out", path("p-tf32"), "--precision", "tf32"});
        QVERIFY2(r.code == 2 && r.err.contains("CUDA"), qPrintable(r.err));
        if (!cpuHasBf16()) QSKIP("this CPU has no bf16 units");
        QCOMPARE(cli({"shapes", "generate", "--out", path("p-world"), "--count", "12", "--seed", "8"}).code, 0);
        r = cli({"cache", "build", "--model", clip, "--images", path("p-world") + "/images", "--out", path("p-cache"), "--precision", "bf16"});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const auto manifest = nlohmann::json::parse(readFileText(path("p-cache/manifest.json").toStdString()));
        QCOMPARE(manifest["precision"].get<std::string>(), std::string("bf16"));
        QCOMPARE(DatasetCache(path("p-cache").toStdString()).precision(), std::string("bf16"));
        const QString pool = QString(VITSCOPE_SOURCE_DIR) + "/resources/shapes/text_pool.txt";
        r = cli({"textspan", "--cache", path("p-cache"), "--texts", pool, "--per-head", "2", "--out", path("p-heads.json")});
        QVERIFY2(r.code == 0 && r.out.contains("terms computed in bf16"), qPrintable(r.out + r.err));
        r = cli({"decompose", "--model", model, "--pixels", pixels, "--out", path("p-dec"), "--precision", "bf16"});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QVERIFY(nlohmann::json::parse(readFileText(path("p-dec/summary.json").toStdString()))["max_abs_error"].get<double>() < 1e-4);
    }

    void info() {
        const Run r = cli({"info", "--model", q(oracle("clip-tiny/hf"))});
        QCOMPARE(r.code, 0);
        const auto j = nlohmann::json::parse(r.out.toStdString());
        QCOMPARE(j["family"].get<std::string>(), std::string("clip"));
        QCOMPARE(j["layers"].get<int>(), 3);
        QCOMPARE(j["heads"].get<int>(), 2);
        QCOMPARE(j["width"].get<int>(), 128);
        QCOMPARE(j["embed_dim"].get<int>(), 32);
        QCOMPARE(j["image_size"].get<int>(), 224);
        QCOMPARE(j["patch_size"].get<int>(), 32);
        QCOMPARE(j["tokens"].get<int>(), 50);
    }

    void checkpointLayouts() {
        // A training checkpoint through info (what was read) and embed / decompose (the numbers).
        const Run info = cli({"info", "--model", q(oracle("layouts/dino_full.pth")), "--checkpoint-key", "student"});
        QVERIFY2(info.code == 0, qPrintable(info.err));
        const auto j = nlohmann::json::parse(info.out.toStdString());
        QCOMPARE(j["format"].get<std::string>(), std::string("torch-zip"));
        QCOMPARE(j["checkpoint_key"].get<std::string>(), std::string("student"));
        QCOMPARE(j["checkpoint_keys_found"].get<std::vector<std::string>>(), (std::vector<std::string>{"student", "teacher"}));
        QCOMPARE(j["stripped_prefix"].get<std::string>(), std::string("module.backbone."));
        QCOMPARE(j["ignored_tensors"].size(), std::size_t(2));
        QCOMPARE(j["stored_dtypes"]["float32"].get<int>(), 44);
        const Run embed = cli({"embed", "--model", q(oracle("layouts/tv_legacy.pth")), "--pixels", q(oracle("vit-tiny/pixels.npy")),
                               "--out", path("legacy")});
        QVERIFY2(embed.code == 0, qPrintable(embed.err));
        QVERIFY(maxAbsDiff(readNpyTensor(path("legacy/logits.npy").toStdString()), readNpyTensor(oracle("vit-tiny/logits.npy"))) < 1e-4);
        const Run dec = cli({"decompose", "--model", q(oracle("layouts/hf_sharded")), "--pixels", q(oracle("clip-tiny/pixels.npy")),
                             "--out", path("sharded")});
        QVERIFY2(dec.code == 0, qPrintable(dec.err));
        QVERIFY(maxAbsDiff(readNpyTensor(path("sharded/output.npy").toStdString()), readNpyTensor(oracle("clip-tiny/image_embeds.npy"))) < 1e-4);
        const Run bad = cli({"info", "--model", q(oracle("layouts/dino_full.pth")), "--checkpoint-key", "optimizer"});
        QCOMPARE(bad.code, 2);
        QVERIFY2(bad.err.contains("dino_full.pth") && bad.err.contains("student, teacher") && bad.err.trimmed().count('\n') == 0,
                 qPrintable(bad.err));
    }

    void tokenize() {
        const auto texts = nlohmann::json::parse(readFileText(oracle("clip-tiny/texts.json")));
        QStringList args{"tokenize", "--model", q(oracle("clip-tiny/open_clip")), "--out", path("tokens.npy")};
        for (const auto& t : texts) args << "--text" << q(t.get<std::string>());
        const Run r = cli(args);
        QCOMPARE(r.code, 0);
        const at::Tensor ids = readNpyTensor(path("tokens.npy").toStdString());
        QCOMPARE(ids.scalar_type(), at::kLong);
        QVERIFY(at::equal(ids, readNpyTensor(oracle("clip-tiny/tokens.npy"))));
    }

    void embedClip() {
        const auto texts = nlohmann::json::parse(readFileText(oracle("clip-tiny/texts.json")));
        QStringList args{"embed", "--model", q(oracle("clip-tiny/openai/ViT-tiny.pt")), "--pixels",
                         q(oracle("clip-tiny/pixels.npy")), "--out", path("embed"), "--batch", "2"};
        for (const auto& t : texts) args << "--text" << q(t.get<std::string>());
        const Run r = cli(args);
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QVERIFY(maxAbsDiff(readNpyTensor(path("embed/image_embeds.npy").toStdString()),
                           readNpyTensor(oracle("clip-tiny/image_embeds.npy"))) < 1e-4);
        QVERIFY(maxAbsDiff(readNpyTensor(path("embed/text_embeds.npy").toStdString()),
                           readNpyTensor(oracle("clip-tiny/text_embeds.npy"))) < 1e-4);
        // From the image files: the same preprocessing as the reference.
        const Run files = cli({"embed", "--model", q(oracle("clip-tiny/hf")), "--image", q(oracle("clip-tiny/image0.png")),
                               q(oracle("clip-tiny/image1.png")), q(oracle("clip-tiny/image2.png")), "--out", path("embed2")});
        QCOMPARE(files.code, 0);
        QVERIFY(vitscope::test::minRowCosine(readNpyTensor(path("embed2/image_embeds.npy").toStdString()),
                                             readNpyTensor(oracle("clip-tiny/image_embeds.npy"))) > 0.999);
    }

    void embedClassifier() {
        const Run r = cli({"embed", "--model", q(oracle("vit-tiny/torchvision_vit.pth")), "--pixels",
                           q(oracle("vit-tiny/pixels.npy")), "--out", path("vit")});
        QCOMPARE(r.code, 0);
        QVERIFY(maxAbsDiff(readNpyTensor(path("vit/features.npy").toStdString()), readNpyTensor(oracle("vit-tiny/features.npy"))) < 1e-4);
        QVERIFY(maxAbsDiff(readNpyTensor(path("vit/logits.npy").toStdString()), readNpyTensor(oracle("vit-tiny/logits.npy"))) < 1e-4);
    }

    void decompose() {
        const Run r = cli({"decompose", "--model", q(oracle("clip-tiny/open_clip")), "--pixels", q(oracle("clip-tiny/pixels.npy")),
                           "--out", path("dec"), "--tokens"});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const std::pair<const char*, const char*> files[] = {{"heads.npy", "decomp_heads.npy"},
                                                             {"attn_bias.npy", "decomp_attn_bias.npy"},
                                                             {"mlps.npy", "decomp_mlps.npy"},
                                                             {"embed.npy", "decomp_embed.npy"},
                                                             {"post_bias.npy", "decomp_post_bias.npy"},
                                                             {"output.npy", "image_embeds.npy"}};
        for (const auto& [ours, theirs] : files) {
            const at::Tensor a = readNpyTensor((m_dir.path() + "/dec/" + ours).toStdString());
            QVERIFY2(maxAbsDiff(a, readNpyTensor(oracle(std::string("clip-tiny/") + theirs))) < 1e-4, ours);
        }
        const auto summary = nlohmann::json::parse(readFileText(path("dec/summary.json").toStdString()));
        QVERIFY(summary["max_abs_error"].get<double>() < 1e-4);
        const Run pooled = cli({"decompose", "--model", q(oracle("vit-tiny/timm_vit.safetensors")), "--pixels",
                                q(oracle("vit-tiny/pixels.npy")), "--out", path("dec2"), "--convention", "textspan"});
        QCOMPARE(pooled.code, 0);
        QCOMPARE(readNpyTensor(path("dec2/heads.npy").toStdString()).sizes().vec(), (std::vector<int64_t>{4, 3, 2, 128}));
    }

    // second-order: effects.npy / norms.npy as the lens computes them in-process, a run that
    // resumes into its own output (rows lost after the recorded count are recomputed), refusals.
    void secondOrder() {
        const std::string model = source("models/shapes-clip");
        at::manual_seed(41);
        const at::Tensor pixels = at::randn({5, 3, 64, 64});
        writeNpyTensor(path("so_pixels.npy").toStdString(), pixels);
        const Run r = cli({"second-order", "--model", q(model), "--pixels", path("so_pixels.npy"), "--layer", "1", "--batch", "2",
                           "--out", path("so")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const Model m = loadModel(model);
        SecondOrderSettings s;
        s.layer = 1;
        const SecondOrderEffects expected = SecondOrderLens(m, s).compute(pixels);
        const std::string effectsFile = path("so/effects.npy").toStdString();
        const at::Tensor effects = readNpyTensor(effectsFile);
        QCOMPARE(effects.sizes().vec(), (std::vector<int64_t>{5, m.vision.encoder.blocks[1].fc2W.size(1), m.vision.embedDim()}));
        QVERIFY(maxAbsDiff(effects, expected.effects) < 1e-5 * expected.effects.abs().max().item<double>());
        QVERIFY(maxAbsDiff(readNpyTensor(path("so/norms.npy").toStdString()), expected.norms) < 1e-5 * expected.norms.max().item<double>());
        // No maps kept (rebuilt for every batch): the same effects.
        const Run rebuilt = cli({"second-order", "--model", q(model), "--pixels", path("so_pixels.npy"), "--layer", "1", "--batch", "2",
                                 "--maps-budget", "0", "--out", path("so_rebuilt")});
        QVERIFY2(rebuilt.code == 0, qPrintable(rebuilt.err));
        QVERIFY(maxAbsDiff(readNpyTensor(path("so_rebuilt/effects.npy").toStdString()), expected.effects) <
                1e-5 * expected.effects.abs().max().item<double>());
        QCOMPARE(cli({"second-order", "--model", q(model), "--pixels", path("so_pixels.npy"), "--layer", "1", "--maps-budget", "-1", "--out",
                      path("so_bad")}).code, 2);
        auto summary = nlohmann::json::parse(readFileText(path("so/summary.json").toStdString()));
        QCOMPARE(summary["images_done"].get<int>(), 5);
        QCOMPARE(summary["convention"].get<std::string>(), std::string("reference"));
        // An interrupted run as the command leaves it: 2 images recorded, the rest of the file stale.
        summary["images_done"] = 2;
        writeFileAtomic(path("so/summary.json").toStdString(), summary.dump(2));
        {
            std::fstream f(effectsFile, std::ios::in | std::ios::out | std::ios::binary);
            f.seekp(-4096, std::ios::end);
            const std::string zeros(4096, '\0');
            f.write(zeros.data(), 4096);
        }
        const Run resumed = cli({"second-order", "--model", q(model), "--pixels", path("so_pixels.npy"), "--layer", "1", "--batch", "2",
                                 "--out", path("so")});
        QVERIFY2(resumed.code == 0, qPrintable(resumed.err));
        QVERIFY2(resumed.out.contains("resuming after 2 of 5"), qPrintable(resumed.out));
        QVERIFY(maxAbsDiff(readNpyTensor(effectsFile), expected.effects) < 1e-5 * expected.effects.abs().max().item<double>());
        // neurons describe on the run: compute_pcas.py's directions of the effects, a text list per neuron.
        writeFileAtomic(path("so_texts.txt").toStdString(), "a red circle\na blue square\na green star\na yellow heart\na striped circle\n");
        const Run described = cli({"neurons", "describe", "--model", q(model), "--effects", path("so"), "--texts", path("so_texts.txt"),
                                   "--top-k", "4", "--components", "3", "--out", path("so_desc")});
        QVERIFY2(described.code == 0, qPrintable(described.err));
        const NeuronDirections dirs = neuronPrincipalDirections(expected.effects, 4);
        QVERIFY(maxAbsDiff(readNpyTensor(path("so_desc/directions.npy").toStdString()), dirs.directions) < 1e-4);
        QVERIFY(at::equal(readNpyTensor(path("so_desc/top_images.npy").toStdString()), dirs.topImages));
        const auto decomposition = nlohmann::json::parse(readFileText(path("so_desc/decomposition.json").toStdString()));
        QCOMPARE(static_cast<int64_t>(decomposition.size()), dirs.directions.size(0));
        QCOMPARE(decomposition["0"].size(), std::size_t(3));
        QVERIFY(std::abs(decomposition["0"][0][1].get<double>()) >= std::abs(decomposition["0"][2][1].get<double>()));
        QVERIFY(readFileText(path("so_desc/neurons.md").toStdString()).find("| " + std::to_string(dirs.topNorms.select(1, 3).argmax().item<int64_t>()) + " |") != std::string::npos);
        // neurons rank / retrieve over the run: the in-process ranking and scores.
        const Run ranked = cli({"neurons", "rank", "--model", q(model), "--effects", path("so"), "--texts", path("so_texts.txt"),
                                "--out", path("so_rank.csv")});
        QVERIFY2(ranked.code == 0, qPrintable(ranked.err));
        const at::Tensor output = readNpyTensor(path("so/output.npy").toStdString());
        QVERIFY(maxAbsDiff(output, expected.output) < 1e-5 * expected.output.abs().max().item<double>());
        const TextEncoder encoder(m);
        const auto inProcess = rankNeurons(expected.effects, neuronTotal(expected.output, NeuronConvention::Reference, 100.0),
                                           encoder.encodeDescriptions(readTextList(path("so_texts.txt").toStdString())));
        const std::vector<std::string> rankLines = splitLines(readFileText(path("so_rank.csv").toStdString()));
        QCOMPARE(rankLines.size(), inProcess.size() + 1);
        QVERIFY2(rankLines[1].rfind("1," + std::to_string(inProcess[0].first) + ",1,", 0) == 0, rankLines[1].c_str());
        const Run retrieved = cli({"neurons", "retrieve", "--model", q(model), "--effects", path("so"), "--text", "a red circle", "--neurons",
                                   path("so_rank.csv"), "--count", "2", "--top", "3", "--out", path("so_ret.json")});
        QVERIFY2(retrieved.code == 0, qPrintable(retrieved.err));
        const auto hits = nlohmann::json::parse(readFileText(path("so_ret.json").toStdString()));
        QCOMPARE(hits["neurons"].get<std::vector<int64_t>>(), (std::vector<int64_t>{inProcess[0].first, inProcess[1].first}));
        const at::Tensor scores = neuronDirectionScores(expected.effects, {inProcess[0].first, inProcess[1].first}, encoder.encode({"a red circle"})[0]);
        QCOMPARE(hits["through_neurons"][0]["row"].get<int64_t>(), scores.argmax().item<int64_t>());
        QVERIFY(std::abs(hits["through_neurons"][0]["score"].get<double>() - scores.max().item<double>()) < 1e-4 * scores.abs().max().item<double>());
        const Run badList = cli({"neurons", "retrieve", "--model", q(model), "--effects", path("so"), "--text", "a red circle", "--neurons",
                                 "3,x", "--out", path("so_ret2.json")});
        QCOMPARE(badList.code, 2);
        QVERIFY2(badList.err.contains("'x' is not a neuron index"), qPrintable(badList.err));
        const Run tooMany = cli({"neurons", "describe", "--model", q(model), "--effects", path("so"), "--texts", path("so_texts.txt"),
                                 "--components", "6", "--out", path("so_desc2")});
        QCOMPARE(tooMany.code, 2);
        QVERIFY2(tooMany.err.contains("so_texts.txt"), qPrintable(tooMany.err));
        summary["images_done"] = 4;
        writeFileAtomic(path("so/summary.json").toStdString(), summary.dump(2));
        const Run unfinished = cli({"neurons", "describe", "--model", q(model), "--effects", path("so"), "--texts", path("so_texts.txt"),
                                    "--out", path("so_desc3")});
        QCOMPARE(unfinished.code, 2);
        QVERIFY2(unfinished.err.contains("not a finished second-order run"), qPrintable(unfinished.err));
        // Another run into the same output, the last block, the scale under the exact convention.
        const Run other = cli({"second-order", "--model", q(model), "--pixels", path("so_pixels.npy"), "--layer", "0", "--out", path("so")});
        QCOMPARE(other.code, 2);
        QVERIFY2(other.err.contains("another second-order run"), qPrintable(other.err));
        const Run last = cli({"second-order", "--model", q(model), "--pixels", path("so_pixels.npy"), "--layer",
                              QString::number(m.vision.layers() - 1), "--out", path("so_last")});
        QCOMPARE(last.code, 2);
        QVERIFY2(last.err.contains("last block"), qPrintable(last.err));
        const Run scaled = cli({"second-order", "--model", q(model), "--pixels", path("so_pixels.npy"), "--layer", "0", "--convention",
                                "exact", "--coefficient", "10", "--out", path("so_exact")});
        QCOMPARE(scaled.code, 2);
        QVERIFY2(scaled.err.contains("--coefficient"), qPrintable(scaled.err));
    }

    // second-order --shard: tasks 0 and 2 of 3, then the command without --shard computes the
    // task never run and merges; the merged files are the direct run's, byte for byte.
    void secondOrderSharded() {
        const std::string model = source("models/shapes-clip");
        at::manual_seed(43);
        writeNpyTensor(path("sos_pixels.npy").toStdString(), at::randn({130, 3, 64, 64}));
        const QStringList common{"second-order", "--model", q(model), "--pixels", path("sos_pixels.npy"), "--layer", "2", "--batch", "32"};
        const Run direct = cli(QStringList(common) << "--out" << path("sos_direct"));
        QVERIFY2(direct.code == 0, qPrintable(direct.err));
        for (const char* shard : {"0/3", "2/3"}) {
            const Run r = cli(QStringList(common) << "--shard" << shard << "--out" << path("sos"));
            QVERIFY2(r.code == 0, qPrintable(r.err));
        }
        QVERIFY(!QFile::exists(path("sos/shards/1-of-3")));
        const Run gathered = cli(QStringList(common) << "--out" << path("sos"));
        QVERIFY2(gathered.code == 0, qPrintable(gathered.err));
        QVERIFY2(gathered.out.contains("merged 3 shards"), qPrintable(gathered.out));
        for (const char* file : {"effects.npy", "norms.npy", "output.npy"})
            QVERIFY2(readFileText(path("sos/").toStdString() + file) == readFileText(path("sos_direct/").toStdString() + file), file);
        const auto summary = nlohmann::json::parse(readFileText(path("sos/summary.json").toStdString()));
        QCOMPARE(summary["images_done"].get<int>(), 130);
        // describe reads the merged run as any other.
        writeFileAtomic(path("sos_texts.txt").toStdString(), "a red circle\na blue square\na green star\n");
        const Run d = cli({"neurons", "describe", "--model", q(model), "--effects", path("sos"), "--texts", path("sos_texts.txt"), "--components",
                           "2", "--out", path("sos_desc")});
        QVERIFY2(d.code == 0, qPrintable(d.err));
    }

    // neurons summarise in 3 shards as a Slurm job array runs it twice (the second array chained
    // with afterok): in the first, tasks 0 and 1 finish pass 1 and wait for the mean, task 2 (the
    // last, chosen by the array's variables) finishes both passes; in the second, task 0 resumes
    // with pass 2; task 1 never runs again, and the command without --shard finishes it and
    // merges. Every file equals one run's byte for byte. Shards of another summary are refused.
    void neuronSummaryShards() {
        at::manual_seed(47);
        writeNpyTensor(path("nss_pixels.npy").toStdString(), at::randn({200, 3, 64, 64}));
        const QStringList common{"neurons", "summarise", "--model", q(bundledModelDir()), "--pixels", path("nss_pixels.npy"), "--layer", "1",
                                 "--top-k", "20", "--batch", "7"};
        const Run direct = cli(common + QStringList{"--out", path("nss_direct")});
        QVERIFY2(direct.code == 0, qPrintable(direct.err));
        const QStringList sharded = common + QStringList{"--out", path("nss")};
        const Run t0 = cli(sharded + QStringList{"--shard", "0/3"});
        QVERIFY2(t0.code == 0 && t0.out.contains("shard 0-of-3 (images 0..64") && t0.out.contains("pass 1 done") &&
                     t0.out.contains("waits on shard 1-of-3 2-of-3"),
                 qPrintable(t0.err + t0.out));
        const Run t1 = cliWith(sharded, {{"SLURM_ARRAY_TASK_ID", "1"}, {"SLURM_ARRAY_TASK_MIN", "0"}, {"SLURM_ARRAY_TASK_COUNT", "3"}});
        QVERIFY2(t1.code == 0 && t1.out.contains("shard 1-of-3 (images 64..128, chosen by SLURM_ARRAY_TASK_ID=1") &&
                     t1.out.contains("waits on shard 2-of-3"),
                 qPrintable(t1.err + t1.out));
        const Run t2 = cliWith(sharded, {{"SLURM_ARRAY_TASK_ID", "7"}, {"SLURM_ARRAY_TASK_MIN", "5"}, {"SLURM_ARRAY_TASK_COUNT", "3"}});
        QVERIFY2(t2.code == 0 && t2.out.contains("shard 2-of-3 (images 128..200") && t2.out.contains("both passes done"), qPrintable(t2.err + t2.out));
        const Run again = cli(sharded + QStringList{"--shard", "0/3"});
        QVERIFY2(again.code == 0 && again.out.contains("resumed in pass 2 after 0 images") && again.out.contains("both passes done"),
                 qPrintable(again.err + again.out));
        QVERIFY(!QFile::exists(path("nss/summary.json")));
        // A task of another summary (top-k, layer) into these shards: refused in one line naming the shard's state.
        for (const QStringList& other : {QStringList{"--top-k", "10"}, QStringList{"--layer", "2"}}) {
            QStringList args = sharded + QStringList{"--shard", "1/3"};
            for (int i = 0; i < other.size(); i += 2) args[args.indexOf(other[i]) + 1] = other[i + 1];
            const Run r = cli(args);
            QCOMPARE(r.code, 2);
            QVERIFY2(r.err.contains(path("nss/shards/1-of-3/state.safetensors")) && r.err.contains("another neuron summary") && r.err.count('\n') <= 1,
                     qPrintable(r.err));
        }
        const Run merged = cli(sharded);
        QVERIFY2(merged.code == 0 && merged.out.contains("merged 3 shards"), qPrintable(merged.err + merged.out));
        for (const char* file : {"directions.npy", "top_norms.npy", "top_images.npy", "mean.npy", "summary.json"})
            QVERIFY2(readFileText(path("nss/").toStdString() + file) == readFileText(path("nss_direct/").toStdString() + file), file);
        QVERIFY(!QFileInfo::exists(path("nss/shards")));
        const Run late = cli(sharded + QStringList{"--shard", "1/3"});  // a task requeued after the merge
        QVERIFY2(late.code == 0 && late.out.contains("already holds this summary"), qPrintable(late.err + late.out));
        // Shards of two counts in one folder: the merge names the stray one.
        QCOMPARE(cli(sharded.mid(0, sharded.size() - 1) + QStringList{path("nss_mixed"), "--shard", "0/2"}).code, 0);
        QCOMPARE(cli(sharded.mid(0, sharded.size() - 1) + QStringList{path("nss_mixed"), "--shard", "0/3"}).code, 0);
        const Run mixed = cli(sharded.mid(0, sharded.size() - 1) + QStringList{path("nss_mixed")});
        QCOMPARE(mixed.code, 2);
        QVERIFY2(mixed.err.contains("different counts"), qPrintable(mixed.err));
    }

    // A shard interrupted (SIGTERM, as Slurm's preemption or Ctrl-C) in pass 1 saves its state; the
    // same command resumes after the images it had, and the merged files equal one run's.
    void neuronSummaryShardResumes() {
        at::manual_seed(48);
        writeNpyTensor(path("nsr_pixels.npy").toStdString(), at::randn({640, 3, 64, 64}));
        const QStringList common{"neurons", "summarise", "--model", q(bundledModelDir()), "--pixels", path("nsr_pixels.npy"), "--layer", "2",
                                 "--top-k", "5", "--batch", "1"};
        const QStringList shard0 = common + QStringList{"--out", path("nsr"), "--shard", "0/2"};
        QProcess p;
        p.start(VITSCOPE_CLI, shard0);
        QByteArray err;
        const QRegularExpression started("pass 1 of 2\\)\\) ([1-9]\\d*) / ");
        for (int i = 0; i < 2400 && p.state() != QProcess::NotRunning && !started.match(QString::fromUtf8(err)).hasMatch(); ++i) {
            p.waitForReadyRead(50);
            err += p.readAllStandardError();
        }
        p.terminate();
        QVERIFY(p.waitForFinished(60000));
        const QString out = QString::fromUtf8(p.readAllStandardOutput());
        if (!out.contains("interrupted")) QSKIP("the shard finished before it could be interrupted");
        QVERIFY2(out.contains("run the same command to resume"), qPrintable(out));
        const Run resumed = cli(shard0);
        const QRegularExpressionMatch m = QRegularExpression("resumed in pass 1 after (\\d+) images").match(resumed.out);
        QVERIFY2(resumed.code == 0 && m.hasMatch() && m.captured(1).toInt() > 0 && m.captured(1).toInt() < 320, qPrintable(resumed.err + resumed.out));
        const Run merged = cli(common + QStringList{"--out", path("nsr")});  // (shard 1 never ran: the merge runs it)
        QVERIFY2(merged.code == 0 && merged.out.contains("merged 2 shards"), qPrintable(merged.err + merged.out));
        const Run direct = cli(common + QStringList{"--out", path("nsr_direct")});
        QVERIFY2(direct.code == 0, qPrintable(direct.err));
        for (const char* file : {"directions.npy", "top_norms.npy", "top_images.npy", "mean.npy", "summary.json"})
            QVERIFY2(readFileText(path("nsr/").toStdString() + file) == readFileText(path("nsr_direct/").toStdString() + file), file);
    }

    // --convention vit-decompose: the reference walker's terms (tests/data/vit-decompose, the
    // generator's port of it) and a summary that names the convention, the detach block and the miss.
    void decomposeVitDecompose() {
        const std::string data = std::string(VITSCOPE_SOURCE_DIR) + "/tests/data/vit-decompose/";
        const Run r = cli({"decompose", "--model", q(data + "swin"), "--pixels", q(data + "swin_pixels.npy"), "--out", path("vd"),
                           "--convention", "vit-decompose", "--from-block", "1,1"});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const at::Tensor ref = readNpyTensor(data + "swin_1_1_terms.npy");
        QVERIFY(maxAbsDiff(readNpyTensor(path("vd/terms.npy").toStdString()), ref) < 1e-4 * ref.abs().max().item<double>());
        QCOMPARE(readFileText(path("vd/components.txt").toStdString()), std::string("init\n3.0\n3.1\n3.2\n3.3\nmlp.3\n"));
        const auto summary = nlohmann::json::parse(readFileText(path("vd/summary.json").toStdString()));
        QCOMPARE(summary["convention"].get<std::string>(), std::string("vit-decompose"));
        QCOMPARE(summary["from_block"].get<std::vector<int>>(), (std::vector<int>{1, 1}));
        QVERIFY(std::abs(summary["output_miss"].get<double>() - 0.0358) < 1e-3);
    }

    // One output contract for every family: terms.npy [B, C, E] with components.txt (C names)
    // summing over C to output.npy; SigLIP adds the pooling head's own level.
    void decomposeTermsContract_data() {
        QTest::addColumn<QString>("model");
        QTest::addColumn<QString>("pixels");
        QTest::addColumn<int>("components");
        // CLIP 3 layers x 2 heads: embed + 3 x (2 heads, attn_bias, mlp) + post_bias.
        QTest::newRow("clip") << q(oracle("clip-tiny/hf")) << q(oracle("clip-tiny/pixels.npy")) << 14;
        QTest::newRow("vit") << q(oracle("vit-tiny/torchvision_vit.pth")) << q(oracle("vit-tiny/pixels.npy")) << 14;
        // SigLIP 2 layers x 2 heads: embed + 2 x 4 + post_bias + pool.mlp.
        QTest::newRow("siglip") << q(oracle("siglip-tiny/hf")) << q(oracle("siglip-tiny/pixels.npy")) << 11;
        // Swin, 3 stages x 2 blocks, heads 2, 4, 8: embed + 28 heads + 6 x (attn_bias, mlp) + 2 mergings + post_bias.
        QTest::newRow("swin") << q(oracle("swin-tiny/torchvision_swin.pth")) << q(oracle("swin-tiny/pixels.npy")) << 44;
        // MaxViT, blocks 1 + 2, two units each with 2 (stage 0) / 4 heads: embed + 3 convs + 20 heads +
        // 6 x (attn_bias, mlp) + 2 shortcut biases + post_bias.
        QTest::newRow("maxvit") << q(oracle("maxvit-tiny/torchvision_maxvit.pth")) << q(oracle("maxvit-tiny/pixels.npy")) << 39;
    }

    void decomposeTermsContract() {
        QFETCH(QString, model);
        QFETCH(QString, pixels);
        QFETCH(int, components);
        const QString dir = path(("terms-" + std::string(QTest::currentDataTag())).c_str());
        const Run r = cli({"decompose", "--model", model, "--pixels", pixels, "--out", dir, "--tokens"});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const at::Tensor terms = readNpyTensor((dir + "/terms.npy").toStdString());
        const at::Tensor output = readNpyTensor((dir + "/output.npy").toStdString());
        const std::vector<std::string> names = splitLines(readFileText((dir + "/components.txt").toStdString()));
        QCOMPARE(terms.size(1), int64_t(components));
        QCOMPARE(int64_t(names.size()), terms.size(1));
        QCOMPARE(names.front(), std::string("embed"));
        const bool maxvit = std::string(QTest::currentDataTag()) == "maxvit";
        QCOMPARE(names[1], std::string(maxvit ? "conv.0" : "0.0"));
        const double scale = output.abs().max().item<double>();
        QVERIFY(maxAbsDiff(terms.sum(1), output) < 1e-5 * scale);
        if (std::string(QTest::currentDataTag()) == "siglip") {
            QCOMPARE(names.back(), std::string("pool.mlp"));
            const at::Tensor pool = readNpyTensor((dir + "/pool_terms.npy").toStdString());
            const std::vector<std::string> poolNames = splitLines(readFileText((dir + "/pool_components.txt").toStdString()));
            QCOMPARE(poolNames, (std::vector<std::string>{"pool.h0", "pool.h1", "pool.bias", "pool.mlp"}));
            QVERIFY(maxAbsDiff(pool.sum(1), output) < 1e-5 * scale);
            QVERIFY(maxAbsDiff(pool.select(1, 3), terms.select(1, 10)) < 1e-7);  // one pool.mlp in both
            QCOMPARE(readNpyTensor((dir + "/pool_heads.npy").toStdString()).sizes().vec(), (std::vector<int64_t>{3, 2, 16, 64}));
        } else if (std::string(QTest::currentDataTag()) == "swin") {
            // Layer 0 has 2 heads, layer 5 has 8; the mergings' offsets are their own terms.
            QCOMPARE(std::vector<std::string>(names.begin() + 1, names.begin() + 5),
                     (std::vector<std::string>{"0.0", "0.1", "attn_bias.0", "mlp.0"}));
            QCOMPARE(names[names.size() - 6], std::string("5.7"));
            QCOMPARE(std::vector<std::string>(names.end() - 3, names.end()),
                     (std::vector<std::string>{"merge_bias.1", "merge_bias.2", "post_bias"}));
            const at::Tensor merges = readNpyTensor((dir + "/merge_bias.npy").toStdString());
            QCOMPARE(merges.sizes().vec(), (std::vector<int64_t>{2, 2, 128}));
            QVERIFY(maxAbsDiff(merges.select(1, 1), terms.select(1, int64_t(names.size()) - 2)) < 1e-7);
            // Per-token heads over the first stage's 16 x 16 patches, zero where a layer has no such head.
            QCOMPARE(readNpyTensor((dir + "/heads.npy").toStdString()).sizes().vec(), (std::vector<int64_t>{2, 6, 8, 256, 128}));
        } else if (maxvit) {
            QCOMPARE(std::vector<std::string>(names.end() - 3, names.end()),
                     (std::vector<std::string>{"shortcut_bias.0", "shortcut_bias.1", "post_bias"}));
            QCOMPARE(readNpyTensor((dir + "/convs.npy").toStdString()).sizes().vec(), (std::vector<int64_t>{3, 3, 64}));
            QVERIFY(std::find(names.begin(), names.end(), "conv.2") != names.end());
            const Run info = cli({"info", "--model", model});
            QVERIFY2(info.code == 0 && info.out.contains("\"partition\": 4") && info.out.contains("\"family\": \"maxvit\""), qPrintable(info.out));
            // embed pooled.npy beside features.npy (the head's pre-logits)
            const Run e = cli({"embed", "--model", model, "--pixels", pixels, "--out", dir + "-embed"});
            QVERIFY2(e.code == 0, qPrintable(e.err));
            QVERIFY(maxAbsDiff(readNpyTensor((dir + "-embed/pooled.npy").toStdString()), output) < 1e-6);
        } else {
            QCOMPARE(names.back(), std::string("post_bias"));
        }
    }

    // evaluate imagenet-seg on the tiny file in the real layout (tests/data/imagenet-seg): one
    // row per method the model defines, the record names the data by its SHA-256, a second run
    // resumes the first, a run with other settings into the same folder is refused.
    void evaluateImagenetSeg() {
        if (!imagenetSegSupported()) QSKIP("this build has no HDF5 (libhdf5-dev)");
        const QString data = q(vitscope::test::source("tests/data/imagenet-seg/tiny.mat"));
        const QString classes = path("seg-classes.txt"), out = path("seg-run");
        {
            QFile f(classes);
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write("a red circle\na blue square\na green circle\na yellow star\n");
        }
        const QStringList common{"evaluate", "imagenet-seg", "--model", q(bundledModelDir()), "--data", data, "--classes", classes, "--out", out};
        const Run first = cli(common + QStringList{"--limit", "2"});
        QVERIFY2(first.code == 0, qPrintable(first.err));
        const Run second = cli(common);
        QVERIFY2(second.code == 0, qPrintable(second.err));
        QVERIFY2(second.out.contains("resuming: 2 images already evaluated"), qPrintable(second.out));
        QFile rf(out + "/results.json");
        QVERIFY(rf.open(QIODevice::ReadOnly));
        const auto results = nlohmann::json::parse(rf.readAll().toStdString());
        QCOMPARE(results["protocol"].get<std::string>(), std::string("textspan"));
        const Model model = loadModel(bundledModelDir());
        QCOMPARE(results["rows"].size(), heatmapMethodsFor(model).size());
        for (const auto& row : results["rows"]) {
            QCOMPARE(row["images"].get<int>(), 3);
            const double acc = row["pixel_accuracy"].get<double>(), miou = row["miou"].get<double>(), ap = row["map"].get<double>();
            QVERIFY2(acc > 0 && acc <= 100 && miou > 0 && miou <= 1 && ap > 0 && ap <= 1, row.dump().c_str());
        }
        QFile recf(out + "/record.json");
        QVERIFY(recf.open(QIODevice::ReadOnly));
        const auto record = nlohmann::json::parse(recf.readAll().toStdString());
        std::ifstream ej(vitscope::test::source("tests/data/imagenet-seg/expected.json"));
        QCOMPARE(record["data_sha256"].get<std::string>(), nlohmann::json::parse(ej)["file_sha256"].get<std::string>());
        QCOMPARE(record["model_sha256"].get<std::string>(), fileSha256(model.info.weightsPath));
        QCOMPARE(record["class_count"].get<int>(), 4);
        for (const char* f : {"results.md", "results.csv", "progress.jsonl"}) QVERIFY2(QFileInfo::exists(out + "/" + f), f);
        // Sharded (a Slurm job array's tasks), then gathered by a run without --shard: the same table.
        const QString sharded = path("seg-sharded");
        const QStringList shardArgs{"evaluate", "imagenet-seg", "--model", q(bundledModelDir()), "--data", data, "--classes", classes, "--out", sharded};
        for (const char* sh : {"0/2", "1/2"}) {
            const Run part = cli(shardArgs + QStringList{"--shard", sh});
            QVERIFY2(part.code == 0 && part.out.contains("shard done"), qPrintable(part.err + part.out));
        }
        QVERIFY(!QFileInfo::exists(sharded + "/results.json"));
        const Run gathered = cli(shardArgs);
        QVERIFY2(gathered.code == 0 && gathered.out.contains("resuming: 3 images"), qPrintable(gathered.err + gathered.out));
        QFile sf(sharded + "/results.json");
        QVERIFY(sf.open(QIODevice::ReadOnly));
        QCOMPARE(nlohmann::json::parse(sf.readAll().toStdString())["rows"], results["rows"]);
        // Another protocol into the same folder: refused, naming the progress file.
        const Run other = cli(common + QStringList{"--protocol", "chefer"});
        QCOMPARE(other.code, 2);
        QVERIFY2(other.err.contains("progress.jsonl") && other.err.contains("other settings"), qPrintable(other.err));
        const Run unknown = cli(common + QStringList{"--protocol", "legrad"});
        QCOMPARE(unknown.code, 2);
        QVERIFY2(unknown.err.contains("LeGrad publishes no evaluation script"), qPrintable(unknown.err));
    }

    // evaluate ablations on class folders (shapes class-folders writes ImageNet's val/<class>/
    // layout): every row against a port of compute_ablations.py's sums on the cache's own arrays.
    // neurons ablate: compute_ablations.py's rows as the in-process meter gives them on the same
    // images with the training statistics of `neurons describe`; the run resumes.
    void neuronAblations() {
        const QString train = path("na-train"), world = path("na-world"), val = path("na-val"), texts = path("na-texts.txt");
        QCOMPARE(cli({"shapes", "generate", "--out", train, "--count", "60", "--seed", "8181"}).code, 0);
        QCOMPARE(cli({"shapes", "generate", "--out", world, "--count", "48", "--seed", "8282"}).code, 0);
        QCOMPARE(cli({"shapes", "class-folders", "--world", world, "--out", val}).code, 0);
        QStringList args{"second-order", "--model", q(bundledModelDir()), "--layer", "1", "--out", path("na-so"), "--image"};
        for (const QString& f : QDir(train + "/images").entryList({"*.png"}, QDir::Files, QDir::Name)) args << train + "/images/" + f;
        const Run so = cli(args);
        QVERIFY2(so.code == 0, qPrintable(so.err));
        writeFileAtomic(texts.toStdString(), "a circle\na square\na star\n");
        const Run d = cli({"neurons", "describe", "--model", q(bundledModelDir()), "--effects", path("na-so"), "--texts", texts, "--top-k", "20",
                           "--components", "2", "--out", path("na-desc")});
        QVERIFY2(d.code == 0, qPrintable(d.err));
        const Run r = cli({"neurons", "ablate", "--model", q(bundledModelDir()), "--describe", path("na-desc"), "--data", val, "--batch", "7",
                           "--out", path("na-run")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const auto rows = nlohmann::json::parse(readFileText(path("na-run/results.json").toStdString()))["rows"];
        QCOMPARE(int(rows.size()), 6);
        // In process: the class folders in label order, the lens on all images at once, the meter.
        const Model model = loadModel(bundledModelDir());
        const QString differ = ablationRowsDiffer(rows, inProcessNeuronAblation(model, val, path("na-desc"), 1, NeuronConvention::Reference));
        QVERIFY2(differ.isEmpty(), qPrintable(differ));
        // neurons summarise: the same statistics without the effects tensor, and the same table from them.
        QStringList sumArgs{"neurons", "summarise", "--model", q(bundledModelDir()), "--layer", "1", "--top-k", "20", "--batch", "7",
                            "--out", path("na-sum"), "--image"};
        sumArgs << args.mid(args.indexOf("--image") + 1);
        const Run summarised = cli(sumArgs);
        QVERIFY2(summarised.code == 0, qPrintable(summarised.err));
        for (const char* array : {"directions.npy", "top_norms.npy", "mean.npy"}) {
            const double d = maxAbsDiff(readNpyTensor((path("na-sum/") + array).toStdString()), readNpyTensor((path("na-desc/") + array).toStdString()));
            QVERIFY2(d < 1e-4, qPrintable(QString("%1 differs by %2").arg(array).arg(d)));
        }
        QVERIFY(at::equal(readNpyTensor(path("na-sum/top_images.npy").toStdString()), readNpyTensor(path("na-desc/top_images.npy").toStdString())));
        QVERIFY(!QFile::exists(path("na-sum/state.safetensors")));
        const Run again = cli(sumArgs);
        QVERIFY2(again.code == 0 && again.out.contains("already holds"), qPrintable(again.out + again.err));
        const Run fromSummary = cli({"neurons", "describe", "--model", q(bundledModelDir()), "--summary", path("na-sum"), "--texts", texts,
                                     "--components", "2", "--out", path("na-sum-desc")});
        QVERIFY2(fromSummary.code == 0, qPrintable(fromSummary.err));
        QCOMPARE(nlohmann::json::parse(readFileText(path("na-sum-desc/decomposition.json").toStdString())).size(),
                 nlohmann::json::parse(readFileText(path("na-desc/decomposition.json").toStdString())).size());
        const Run wrongK = cli({"neurons", "describe", "--model", q(bundledModelDir()), "--summary", path("na-sum"), "--texts", texts,
                                "--top-k", "10", "--components", "2", "--out", path("na-sum-desc2")});
        QCOMPARE(wrongK.code, 2);
        QVERIFY2(wrongK.err.contains("top-k 20"), qPrintable(wrongK.err));
        const Run neither = cli({"neurons", "describe", "--model", q(bundledModelDir()), "--texts", texts, "--components", "2", "--out", path("na-sum-desc3")});
        QCOMPARE(neither.code, 2);
        QVERIFY2(neither.err.contains("--summary DIR"), qPrintable(neither.err));
        const Run fromSum = cli({"neurons", "ablate", "--model", q(bundledModelDir()), "--describe", path("na-sum"), "--data", val, "--batch", "7",
                                 "--out", path("na-run-sum")});
        QVERIFY2(fromSum.code == 0, qPrintable(fromSum.err));
        QCOMPARE(nlohmann::json::parse(readFileText(path("na-run-sum/results.json").toStdString()))["rows"], rows);
        // An interrupted run as a kill leaves it: the last 20 images' lines lost.
        std::vector<std::string> lines = splitLines(readFileText(path("na-run/progress.jsonl").toStdString()));
        lines.resize(lines.size() - 20);
        std::string kept;
        for (const std::string& l : lines) kept += l + "\n";
        writeFileAtomic(path("na-run/progress.jsonl").toStdString(), kept);
        const Run resumed = cli({"neurons", "ablate", "--model", q(bundledModelDir()), "--describe", path("na-desc"), "--data", val, "--batch", "7",
                                 "--out", path("na-run")});
        QVERIFY2(resumed.code == 0, qPrintable(resumed.err));
        QVERIFY2(resumed.out.contains("resuming: 28 images"), qPrintable(resumed.out));
        QCOMPARE(nlohmann::json::parse(readFileText(path("na-run/results.json").toStdString()))["rows"], rows);
        const Run other = cli({"neurons", "ablate", "--model", q(bundledModelDir()), "--describe", path("na-desc"), "--data", val, "--per-class", "2",
                               "--out", path("na-run")});
        QCOMPARE(other.code, 2);
    }

    // neurons ablate on exact-convention statistics: the six rows as the in-process meter gives them
    // in that convention (the output itself as the representation, effects in output units), the
    // convention recorded; a describe output of an unknown convention is refused naming it.
    void neuronAblationsExact() {
        const QString train = path("nx-train"), world = path("nx-world"), val = path("nx-val"), texts = path("nx-texts.txt");
        QCOMPARE(cli({"shapes", "generate", "--out", train, "--count", "40", "--seed", "8383"}).code, 0);
        QCOMPARE(cli({"shapes", "generate", "--out", world, "--count", "32", "--seed", "8484"}).code, 0);
        QCOMPARE(cli({"shapes", "class-folders", "--world", world, "--out", val}).code, 0);
        QStringList args{"second-order", "--model", q(bundledModelDir()), "--layer", "2", "--convention", "exact", "--out", path("nx-so"), "--image"};
        for (const QString& f : QDir(train + "/images").entryList({"*.png"}, QDir::Files, QDir::Name)) args << train + "/images/" + f;
        const Run so = cli(args);
        QVERIFY2(so.code == 0, qPrintable(so.err));
        writeFileAtomic(texts.toStdString(), "a circle\na square\na star\n");
        const Run d = cli({"neurons", "describe", "--model", q(bundledModelDir()), "--effects", path("nx-so"), "--texts", texts, "--top-k", "10",
                           "--components", "2", "--out", path("nx-desc")});
        QVERIFY2(d.code == 0, qPrintable(d.err));
        const Run r = cli({"neurons", "ablate", "--model", q(bundledModelDir()), "--describe", path("nx-desc"), "--data", val, "--batch", "5",
                           "--out", path("nx-run")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const auto results = nlohmann::json::parse(readFileText(path("nx-run/results.json").toStdString()));
        QCOMPARE(results["convention"].get<std::string>(), std::string("exact"));
        QCOMPARE(nlohmann::json::parse(readFileText(path("nx-run/record.json").toStdString()))["convention"].get<std::string>(), std::string("exact"));
        QVERIFY(readFileText(path("nx-run/results.md").toStdString()).find("exact convention") != std::string::npos);
        const Model model = loadModel(bundledModelDir());
        const auto rows = results["rows"];
        const QString differ = ablationRowsDiffer(rows, inProcessNeuronAblation(model, val, path("nx-desc"), 2, NeuronConvention::Exact));
        QVERIFY2(differ.isEmpty(), qPrintable(differ));
        // neurons summarise --convention exact: the same statistics without the effects tensor, the same table.
        QStringList sumArgs{"neurons", "summarise", "--model", q(bundledModelDir()), "--layer", "2", "--convention", "exact", "--top-k", "10",
                            "--out", path("nx-sum"), "--image"};
        sumArgs << args.mid(args.indexOf("--image") + 1);
        const Run summarised = cli(sumArgs);
        QVERIFY2(summarised.code == 0, qPrintable(summarised.err));
        const at::Tensor mean = readNpyTensor(path("nx-desc/mean.npy").toStdString());
        QVERIFY(maxAbsDiff(readNpyTensor(path("nx-sum/mean.npy").toStdString()), mean) < 1e-5 * mean.abs().max().item<double>());
        const Run fromSum = cli({"neurons", "ablate", "--model", q(bundledModelDir()), "--describe", path("nx-sum"), "--data", val, "--out", path("nx-run-sum")});
        QVERIFY2(fromSum.code == 0, qPrintable(fromSum.err));
        const auto sumResults = nlohmann::json::parse(readFileText(path("nx-run-sum/results.json").toStdString()));
        QCOMPARE(sumResults["convention"].get<std::string>(), std::string("exact"));
        QCOMPARE(sumResults["rows"], rows);
        // Another convention's name in the describe output: refused in one line naming the folder.
        QVERIFY(QDir().mkpath(path("nx-odd")));
        for (const char* f : {"directions.npy", "top_norms.npy", "top_images.npy", "mean.npy"})
            QVERIFY(QFile::copy(path("nx-desc/") + f, path("nx-odd/") + f));
        auto summary = nlohmann::json::parse(readFileText(path("nx-desc/summary.json").toStdString()));
        QCOMPARE(summary["convention"].get<std::string>(), std::string("exact"));
        summary["convention"] = "textspan";
        writeFileAtomic(path("nx-odd/summary.json").toStdString(), summary.dump());
        const Run odd = cli({"neurons", "ablate", "--model", q(bundledModelDir()), "--describe", path("nx-odd"), "--data", val, "--out", path("nx-odd-run")});
        QCOMPARE(odd.code, 2);
        QVERIFY2(odd.err.contains("nx-odd") && odd.err.contains("textspan") && odd.err.count('\n') <= 1, qPrintable(odd.err));
    }

    // evaluate imagenet-seg --methods neurons (second_order_lens compute_segmentation.py) under its
    // own protocol on a generated .mat: each image's map against a port of the reference's
    // arithmetic from the activations (its class, its neurons, their mean at the patches, bilinear
    // by the patch size), the table against LocalisationMeter on those maps and against the
    // reference's threshold at 0.5; the run resumes; bad --describe inputs are refused in one line.
    void evaluateImagenetSegNeurons() {
        if (!imagenetSegSupported()) QSKIP("this build has no HDF5 (libhdf5-dev)");
        const QString train = path("ns-train"), world = path("ns-world"), texts = path("ns-texts.txt"), classes = path("ns-classes.txt");
        QCOMPARE(cli({"shapes", "generate", "--out", train, "--count", "30", "--seed", "8585"}).code, 0);
        QCOMPARE(cli({"shapes", "generate", "--out", world, "--count", "5", "--seed", "8686"}).code, 0);
        QCOMPARE(cli({"shapes", "imagenet-seg", "--world", world, "--out", path("ns.mat")}).code, 0);
        writeFileAtomic(texts.toStdString(), "a circle\na square\na star\n");
        writeFileAtomic(classes.toStdString(), "a red circle\na blue square\na green star\na yellow triangle\n");
        QStringList describe;
        for (const char* layer : {"1", "2"}) {
            QStringList args{"second-order", "--model", q(bundledModelDir()), "--layer", layer, "--out", path("ns-so") + layer, "--image"};
            for (const QString& f : QDir(train + "/images").entryList({"*.png"}, QDir::Files, QDir::Name)) args << train + "/images/" + f;
            QCOMPARE(cli(args).code, 0);
            const Run d = cli({"neurons", "describe", "--model", q(bundledModelDir()), "--effects", path("ns-so") + layer, "--texts", texts, "--top-k",
                               "10", "--components", "2", "--out", path("ns-desc") + layer});
            QVERIFY2(d.code == 0, qPrintable(d.err));
            describe << path("ns-desc") + layer;
        }
        const QStringList common{"evaluate", "imagenet-seg", "--model", q(bundledModelDir()), "--data", path("ns.mat"), "--classes", classes,
                                 "--protocol", "second-order-lens", "--methods", "decomposition,neurons", "--describe", describe.join(","),
                                 "--neuron-count", "40", "--out", path("ns-run")};
        const Run first = cli(common + QStringList{"--limit", "3", "--maps", path("ns-maps")});
        QVERIFY2(first.code == 0, qPrintable(first.err));
        const Run second = cli(common + QStringList{"--maps", path("ns-maps")});
        QVERIFY2(second.code == 0 && second.out.contains("resuming: 3 images"), qPrintable(second.err + second.out));
        QStringList textspan = common;
        textspan.replace(textspan.indexOf("second-order-lens"), "textspan");
        textspan.replace(textspan.indexOf(path("ns-run")), path("ns-run-textspan"));
        const Run third = cli(textspan + QStringList{"--maps", path("ns-maps-textspan")});
        QVERIFY2(third.code == 0, qPrintable(third.err));
        // The port, image by image.
        const Model model = loadModel(bundledModelDir());
        const std::vector<std::string> names{"a red circle", "a blue square", "a green star", "a yellow triangle"};
        const at::Tensor classifier = TextEncoder(model).encodeEnsemble(names, {});  // [C, E]
        const at::Tensor pcas = at::cat({readNpyTensor(path("ns-desc1/directions.npy").toStdString()), readNpyTensor(path("ns-desc2/directions.npy").toStdString())});
        const int64_t M = pcas.size(0) / 2, S = model.preprocess.imageSize, p = model.vision.patchSize, g = S / p;
        const ImagenetSegFile data(path("ns.mat").toStdString());
        LocalisationMeter meter(false, ForegroundThreshold::Half);
        double correct = 0, labeled = 0, inter[2] = {0, 0}, uni[2] = {0, 0};
        for (int64_t i = 0; i < data.size(); ++i) {
            const at::Tensor pixels = preprocessImage(data.image(i), model.preprocess).unsqueeze(0);
            const int64_t chosen = at::matmul(encodeImages(model, pixels).output, classifier.t()).argmax(1).item<int64_t>();
            const std::vector<at::Tensor> acts = mlpActivations(model, pixels, {1, 2});
            const auto classMap = [&](int64_t cls) {  // [1, 1, g, g]: the mean of the class's recorded activations at the patches
                const at::Tensor order = at::matmul(pcas, classifier[cls]).abs().argsort();  // np.argsort(np.abs(max_directions[:, i]))[-40:]
                std::vector<at::Tensor> recorded;
                for (int64_t j = order.size(0) - 40; j < order.size(0); ++j) {
                    const int64_t k = order[j].item<int64_t>();
                    recorded.push_back(acts[static_cast<std::size_t>(k / M)][0].select(1, k % M));  // [N]
                }
                return at::stack(recorded).mean(0).narrow(0, 1, g * g).reshape({1, 1, g, g});
            };
            const at::Tensor results = classMap(chosen);
            const at::Tensor res = at::upsample_bilinear2d(results, {S, S}, false, double(p), double(p))[0][0];
            const at::Tensor got = readNpyTensor((path("ns-maps/neurons/") + QString::number(i) + ".npy").toStdString());
            QVERIFY2(maxAbsDiff(got, res) < 1e-5 * res.abs().max().item<double>(), qPrintable(QString("image %1: %2").arg(i).arg(maxAbsDiff(got, res))));
            // The textspan protocol: minus the mean of every class's map.
            at::Tensor mean = at::zeros_like(results);
            for (int64_t cls = 0; cls < classifier.size(0); ++cls) mean += classMap(cls) / double(classifier.size(0));
            const at::Tensor centred = at::upsample_bilinear2d(results - mean, {S, S}, false, double(p), double(p))[0][0];
            const at::Tensor gotCentred = readNpyTensor((path("ns-maps-textspan/neurons/") + QString::number(i) + ".npy").toStdString());
            QVERIFY2(maxAbsDiff(gotCentred, centred) < 1e-5 * res.abs().max().item<double>(), qPrintable(QString("image %1 (textspan)").arg(i)));
            cv::Mat squashed;
            cv::resize(data.mask(i), squashed, cv::Size(int(S), int(S)), 0, 0, cv::INTER_NEAREST_EXACT);
            const at::Tensor mask = at::from_blob(squashed.data, {S, S}, at::kByte).clone();
            meter.add(got, mask);  // (the AP ranks pixels: the command's own map, not the port's equal-to-rounding one)
            // compute_segmentation.py's counts: min-max, foreground above 0.5.
            const at::Tensor unit = (got - got.min()) / (got.max() - got.min());
            const at::Tensor pred = unit.gt(0.5), fg = mask.ne(0);
            correct += pred.eq(fg).sum().item<double>();
            labeled += double(S * S);
            inter[0] += (~pred & ~fg).sum().item<double>(), uni[0] += (~pred | ~fg).sum().item<double>();
            inter[1] += (pred & fg).sum().item<double>(), uni[1] += (pred | fg).sum().item<double>();
            QVERIFY(QFileInfo::exists(path("ns-maps/decomposition/") + QString::number(i) + ".npy"));
        }
        const auto rows = nlohmann::json::parse(readFileText(path("ns-run/results.json").toStdString()))["rows"];
        QCOMPARE(int(rows.size()), 2);
        const auto& row = rows[1];
        QCOMPARE(row["method"].get<std::string>(), std::string("neurons"));
        QCOMPARE(row["images"].get<int64_t>(), data.size());
        QVERIFY2(std::abs(row["pixel_accuracy"].get<double>() - 100 * meter.pixelAccuracy()) < 1e-9, row.dump().c_str());
        QVERIFY(std::abs(row["miou"].get<double>() - meter.meanIoU()) < 1e-9);
        QVERIFY(std::abs(row["map"].get<double>() - meter.meanAveragePrecision()) < 1e-9);
        QVERIFY(std::abs(row["pointing_game"].get<double>() - meter.pointingGame()) < 1e-9);
        QVERIFY(std::abs(meter.pixelAccuracy() - correct / labeled) < 1e-12);
        QVERIFY(std::abs(meter.meanIoU() - 0.5 * (inter[0] / uni[0] + inter[1] / uni[1])) < 1e-12);
        const auto record = nlohmann::json::parse(readFileText(path("ns-run/record.json").toStdString()));
        QCOMPARE(record["neuron_count"].get<int>(), 40);
        QCOMPARE(record["neurons"]["layers"], nlohmann::json({1, 2}));
        QVERIFY(record["map"].get<std::string>().find("above 0.5") != std::string::npos);
        // Bad inputs: the neurons method without --describe, a missing folder, another model's output,
        // a directions file of another shape; each one line naming what is wrong.
        const QStringList base{"evaluate", "imagenet-seg", "--model", q(bundledModelDir()), "--data", path("ns.mat"), "--classes", classes, "--out", path("ns-bad")};
        const Run noDescribe = cli(base + QStringList{"--methods", "neurons"});
        QVERIFY2(noDescribe.code == 2 && noDescribe.err.contains("--describe"), qPrintable(noDescribe.err));
        const Run missing = cli(base + QStringList{"--methods", "neurons", "--describe", path("ns-none")});
        QVERIFY2(missing.code == 2 && missing.err.contains("ns-none"), qPrintable(missing.err));
        const Run otherModel = cli({"evaluate", "imagenet-seg", "--model", q(vitscope::test::source("models/shapes-clip-planted")), "--data", path("ns.mat"),
                                    "--classes", classes, "--out", path("ns-bad2"), "--methods", "neurons", "--describe", describe.join(",")});
        QVERIFY2(otherModel.code == 2 && otherModel.err.contains("ns-desc1") && otherModel.err.contains("another model"), qPrintable(otherModel.err));
        QVERIFY(QDir().mkpath(path("ns-cut")));
        QVERIFY(QFile::copy(path("ns-desc1/summary.json"), path("ns-cut/summary.json")));
        writeNpyTensor(path("ns-cut/directions.npy").toStdString(), pcas.narrow(0, 0, 7));
        const Run cut = cli(base + QStringList{"--methods", "neurons", "--describe", path("ns-cut")});
        QVERIFY2(cut.code == 2 && cut.err.contains("ns-cut/directions.npy") && cut.err.count('\n') <= 1, qPrintable(cut.err));
    }

    void evaluateAblations() {
        const QString world = path("zs-world"), val = path("zs-val"), out = path("zs-run"), classes = path("zs-classes.txt");
        QCOMPARE(cli({"shapes", "generate", "--out", world, "--count", "160", "--seed", "7373"}).code, 0);
        QCOMPARE(cli({"shapes", "class-folders", "--world", world, "--out", val}).code, 0);
        const std::vector<std::string> folders{"circle", "cross", "diamond", "heart", "hexagon", "square", "star", "triangle"};
        std::vector<std::string> names;
        {
            QFile f(classes);
            QVERIFY(f.open(QIODevice::WriteOnly));
            for (const std::string& c : folders) {
                names.push_back("a " + c);
                f.write(("a " + c + "\n").c_str());
            }
        }
        const Run r = cli({"evaluate", "ablations", "--model", q(bundledModelDir()), "--data", val, "--classes", classes, "--out", out});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QFile rf(out + "/results.json");
        QVERIFY(rf.open(QIODevice::ReadOnly));
        const auto rows = nlohmann::json::parse(rf.readAll().toStdString())["rows"];
        QCOMPARE(int(rows.size()), 2 + 4);  // baseline, MLPs, attention layers 0-0 .. 0-3
        // The port: the reference's sums (its `mlps` holds the embedding as its first row; layers
        // ablated cumulatively; means over the evaluated images) on the cache's arrays.
        const DatasetCache cache((out + "/cache").toStdString());
        const Model model = loadModel(bundledModelDir());
        const at::Tensor cls = TextEncoder(model).encodeEnsemble(names, {});
        std::vector<int64_t> labels;
        for (const std::string& p : cache.paths())
            labels.push_back(std::find(folders.begin(), folders.end(), std::filesystem::path(p).parent_path().filename().string()) - folders.begin());
        const at::Tensor y = at::tensor(labels, at::kLong);
        auto top1 = [&](const at::Tensor& rep) { return 100.0 * at::matmul(rep, cls.t()).argmax(1).eq(y).sum().item<double>() / y.size(0); };
        const at::Tensor outRep = cache.output().to(at::kFloat);
        const at::Tensor mlps = cache.mlps().to(at::kFloat).sum(1) + cache.other().to(at::kFloat).select(1, 0);
        const at::Tensor layers = cache.heads().to(at::kFloat).sum(2);  // [N, L, E]
        std::vector<double> want{top1(outRep), top1(outRep - mlps + mlps.mean(0))};
        at::Tensor ablated = outRep.clone();
        for (int64_t l = 0; l < layers.size(1); ++l) {
            ablated = ablated - layers.select(1, l) + layers.select(1, l).mean(0);
            want.push_back(top1(ablated));
        }
        for (std::size_t i = 0; i < want.size(); ++i)  // one image's flip at most (float order of the sums)
            QVERIFY2(std::abs(rows[i]["top1"].get<double>() - want[i]) <= 100.0 / y.size(0) + 1e-9,
                     qPrintable(QString("%1: %2 vs %3").arg(q(rows[i]["row"].get<std::string>())).arg(rows[i]["top1"].get<double>()).arg(want[i])));
        QVERIFY2(want[0] > want[1] && want[0] > want.back(), "ablating should cost accuracy on this model");
        // A cache built beforehand (as cache build writes it, e.g. sharded on Slurm): the same table.
        const QString prebuilt = path("zs-prebuilt");
        QCOMPARE(cli({"cache", "build", "--model", q(bundledModelDir()), "--images", val, "--out", prebuilt}).code, 0);
        const Run again = cli({"evaluate", "ablations", "--model", q(bundledModelDir()), "--data", val, "--classes", classes, "--cache", prebuilt,
                               "--out", path("zs-run2")});
        QVERIFY2(again.code == 0, qPrintable(again.err));
        QFile rf2(path("zs-run2") + "/results.json");
        QVERIFY(rf2.open(QIODevice::ReadOnly));
        QCOMPARE(nlohmann::json::parse(rf2.readAll().toStdString())["rows"], rows);
        // The reference's class-token rows: its `cls_attn` (each layer's term from the class token,
        // summed over heads) replaced by its mean, alone and with the MLPs.
        const Run withCls = cli({"evaluate", "ablations", "--model", q(bundledModelDir()), "--data", val, "--classes", classes, "--class-token",
                                 "--out", path("zs-cls")});
        QVERIFY2(withCls.code == 0, qPrintable(withCls.err));
        QFile cf(path("zs-cls") + "/results.json");
        QVERIFY(cf.open(QIODevice::ReadOnly));
        const auto clsRows = nlohmann::json::parse(cf.readAll().toStdString())["rows"];
        QCOMPARE(int(clsRows.size()), 2 + 4 + 2);
        {
            at::NoGradGuard noGrad;
            DecomposeOptions opts;
            opts.tokens = true;
            const Decomposition dec = decomposeImages(model, loadAndPreprocess(cache.paths(), model.preprocess), opts);
            // Its token axis sums to the cached per-head terms (fp16 storage), token 0 the class token.
            QVERIFY(maxAbsDiff(dec.heads.sum(3).sum(2), layers) < 2e-2 * layers.abs().max().item<double>());
            const at::Tensor clsSum = dec.heads.select(3, 0).sum(2).sum(1).to(at::kFloat);  // [N, E]
            const at::Tensor withoutCls = outRep - clsSum + clsSum.mean(0);
            const double wantCls = top1(withoutCls), wantBoth = top1(withoutCls - mlps + mlps.mean(0));
            QVERIFY2(std::abs(clsRows[6]["top1"].get<double>() - wantCls) <= 100.0 / y.size(0) + 1e-9, clsRows[6].dump().c_str());
            QVERIFY2(std::abs(clsRows[7]["top1"].get<double>() - wantBoth) <= 100.0 / y.size(0) + 1e-9, clsRows[7].dump().c_str());
            QCOMPARE(clsRows[6]["row"].get<std::string>(), std::string("class token mean-ablated"));
        }
        const Run otherModel = cli({"evaluate", "ablations", "--model", q(bundledModelDir("shapes-clip-spurious")), "--data", val, "--classes",
                                    classes, "--cache", prebuilt, "--out", path("zs-run3")});
        QCOMPARE(otherModel.code, 2);
        QVERIFY2(otherModel.err.contains("was built with another model"), qPrintable(otherModel.err));
        // A class list of another length, a folder without class folders: one line each.
        QFile bad(path("zs-bad.txt"));
        QVERIFY(bad.open(QIODevice::WriteOnly));
        bad.write("a circle\n");
        bad.close();
        const Run wrong = cli({"evaluate", "zero-shot", "--model", q(bundledModelDir()), "--data", val, "--classes", path("zs-bad.txt"), "--out", out});
        QCOMPARE(wrong.code, 2);
        QVERIFY2(wrong.err.contains("zs-bad.txt") && wrong.err.contains("8 class folders"), qPrintable(wrong.err));
        const Run flat = cli({"evaluate", "zero-shot", "--model", q(bundledModelDir()), "--data", world + "/images", "--out", path("zs-flat")});
        QCOMPARE(flat.code, 2);
        QVERIFY2(flat.err.contains("one folder per class"), qPrintable(flat.err));
    }

    // ImageNet's flat validation folder with the devkit's or Kaggle's ground truth (shapes
    // imagenet-val writes both, the IDs in reverse sorted order and an inner synset first, as
    // traps): the same tables as the class folders of the same images; the record hashes the
    // ground-truth files; folders that disagree with the ground truth are refused in one line.
    void evaluateFlatImagenetVal() {
        const QString world = path("flat-world"), folders = path("flat-cf"), flat = path("flat-val"), classes = path("flat-classes.txt");
        QCOMPARE(cli({"shapes", "generate", "--out", world, "--count", "96", "--seed", "7474"}).code, 0);
        QCOMPARE(cli({"shapes", "class-folders", "--world", world, "--out", folders}).code, 0);
        const Run exported = cli({"shapes", "imagenet-val", "--world", world, "--out", flat});
        QVERIFY2(exported.code == 0, qPrintable(exported.err));
        QVERIFY(QFileInfo::exists(flat + "/val/ILSVRC2012_val_00000096.png"));
        writeFileAtomic(classes.toStdString(), "a circle\na cross\na diamond\na heart\na hexagon\na square\na star\na triangle\n");
        auto rowsOf = [&](const QStringList& args, const char* out) {
            const Run r = cli(QStringList{"evaluate", "ablations", "--model", q(bundledModelDir()), "--batch", "1", "--out", path(out)} + args);
            if (r.code != 0) qWarning("%s", qPrintable(r.err));
            QFile f(path(out) + "/results.json");
            return f.open(QIODevice::ReadOnly) ? nlohmann::json::parse(f.readAll().toStdString())["rows"] : nlohmann::json();
        };
        const QString devkit = flat + "/ILSVRC2012_devkit_t12";
        const auto want = rowsOf({"--data", folders, "--classes", classes}, "flat-run-cf");
        QCOMPARE(int(want.size()), 6);
        QVERIFY2(want[0]["top1"].get<double>() > 50, want.dump().c_str());  // the bundled model knows its shapes
        QCOMPARE(rowsOf({"--data", flat + "/val", "--ground-truth", devkit, "--classes", classes}, "flat-run-devkit"), want);
        // Kaggle's CSV, and the default class names (meta.mat's / the mapping's first words = the folder names).
        QCOMPARE(rowsOf({"--data", flat + "/val", "--ground-truth", flat + "/LOC_val_solution.csv", "--classes", classes}, "flat-run-kaggle"), want);
        QCOMPARE(rowsOf({"--data", flat + "/val", "--ground-truth", devkit + "/data/meta.mat"}, "flat-run-names"),
                 rowsOf({"--data", folders}, "flat-run-cf-names"));
        QFile rf(path("flat-run-devkit") + "/record.json");
        QVERIFY(rf.open(QIODevice::ReadOnly));
        const auto record = nlohmann::json::parse(rf.readAll().toStdString());
        const auto files = record["ground_truth"]["files"];
        QCOMPARE(int(files.size()), 2);
        QCOMPARE(files[0]["sha256"].get<std::string>(), fileSha256((devkit + "/data/ILSVRC2012_validation_ground_truth.txt").toStdString()));
        QCOMPARE(files[1]["sha256"].get<std::string>(), fileSha256((devkit + "/data/meta.mat").toStdString()));
        QCOMPARE(record["ground_truth"]["layout"].get<std::string>(), std::string("devkit"));
        // A folder missing an image, a stray image, a class list of another length: one line each.
        const QStringList common{"evaluate", "zero-shot", "--model", q(bundledModelDir()), "--data", flat + "/val", "--ground-truth", devkit};
        QVERIFY(QFile::rename(flat + "/val/ILSVRC2012_val_00000007.png", path("val7.png")));
        const Run fewer = cli(common + QStringList{"--out", path("flat-bad1")});
        QCOMPARE(fewer.code, 2);
        QVERIFY2(fewer.err.contains("holds 95 images") && fewer.err.contains("ILSVRC2012_val_00000007 is missing") && !fewer.err.trimmed().contains('\n'),
                 qPrintable(fewer.err));
        QVERIFY(QFile::rename(path("val7.png"), flat + "/val/ILSVRC2012_val_00000097.png"));
        const Run stray = cli(common + QStringList{"--out", path("flat-bad2")});
        QCOMPARE(stray.code, 2);
        QVERIFY2(stray.err.contains("ILSVRC2012_val_00000097.png: has no line in the ground truth"), qPrintable(stray.err));
        QVERIFY(QFile::rename(flat + "/val/ILSVRC2012_val_00000097.png", flat + "/val/ILSVRC2012_val_00000007.png"));
        writeFileAtomic(path("flat-one.txt").toStdString(), "a circle\n");
        const Run count = cli(common + QStringList{"--classes", path("flat-one.txt"), "--out", path("flat-bad3")});
        QCOMPARE(count.code, 2);
        QVERIFY2(count.err.contains("ILSVRC2012_devkit_t12 has 8 classes"), qPrintable(count.err));
    }

    // evaluate ovseg on the shapes world in PASCAL VOC's layout (shapes voc): the table and the
    // record; masks outside the palette or the class list are refused in one line naming the file.
    void evaluateOvseg() {
        const QString world = path("voc-world"), voc = path("voc"), out = path("voc-run");
        QCOMPARE(cli({"shapes", "generate", "--out", world, "--count", "24", "--seed", "4242"}).code, 0);
        QCOMPARE(cli({"shapes", "voc", "--world", world, "--out", voc}).code, 0);
        const QStringList common{"evaluate", "ovseg", "--model", q(bundledModelDir()), "--data", voc, "--classes", voc + "/classes.txt"};
        const Run r = cli(common + QStringList{"--method", "decomposition", "--out", out});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QFile rf(out + "/results.json");
        QVERIFY(rf.open(QIODevice::ReadOnly));
        const auto row = nlohmann::json::parse(rf.readAll().toStdString())["rows"][0];
        QCOMPARE(row["images"].get<int>(), 24);
        const double miou = row["miou"].get<double>(), acc = row["pixel_accuracy"].get<double>();
        QVERIFY2(miou > 0 && miou <= 1 && acc > 0 && acc <= 100, row.dump().c_str());
        QVERIFY(row["class_iou"].contains("a background"));
        const Run otherMethod = cli(common + QStringList{"--method", "surgery", "--out", out});  // another run's folder
        QCOMPARE(otherMethod.code, 2);
        QVERIFY2(otherMethod.err.contains("progress.jsonl") && otherMethod.err.contains("other settings"), qPrintable(otherMethod.err));
        // Sharded, then gathered: the same figures.
        const QString sharded = path("voc-sharded");
        const QStringList shardArgs = common + QStringList{"--method", "decomposition", "--out", sharded};
        for (const char* sh : {"0/3", "1/3", "2/3"}) QCOMPARE(cli(shardArgs + QStringList{"--shard", sh}).code, 0);
        const Run gathered = cli(shardArgs);
        QVERIFY2(gathered.code == 0 && gathered.out.contains("resuming: 24 images"), qPrintable(gathered.err + gathered.out));
        QFile sf(sharded + "/results.json");
        QVERIFY(sf.open(QIODevice::ReadOnly));
        const auto sharedRow = nlohmann::json::parse(sf.readAll().toStdString())["rows"][0];
        QCOMPARE(sharedRow["miou"].get<double>(), miou);
        QCOMPARE(sharedRow["pixel_accuracy"].get<double>(), acc);
        QFile recf(out + "/record.json");
        QVERIFY(recf.open(QIODevice::ReadOnly));
        const auto record = nlohmann::json::parse(recf.readAll().toStdString());
        QCOMPARE(record["split_sha256"].get<std::string>(), fileSha256((voc + "/ImageSets/Segmentation/val.txt").toStdString()));
        QVERIFY(record["protocol"].get<std::string>().find("released no evaluation code") != std::string::npos);
        const Run textless = cli(common + QStringList{"--method", "rollout", "--out", path("voc-rollout")});
        QCOMPARE(textless.code, 2);
        QVERIFY2(textless.err.contains("takes no text"), qPrintable(textless.err));
        // Two classes only: the masks hold more.
        QFile few(path("voc-few.txt"));
        QVERIFY(few.open(QIODevice::WriteOnly));
        few.write("a background\na red object\n");
        few.close();
        const Run tooFew = cli({"evaluate", "ovseg", "--model", q(bundledModelDir()), "--data", voc, "--classes", path("voc-few.txt"), "--out", path("voc-few")});
        QCOMPARE(tooFew.code, 2);
        QVERIFY2(tooFew.err.contains("SegmentationClass") && tooFew.err.contains("the class list has 2"), qPrintable(tooFew.err));
        // A mask in colours outside VOC's palette.
        const std::string first = readFileText((voc + "/ImageSets/Segmentation/val.txt").toStdString()).substr(0, 6);
        cv::Mat odd(8, 8, CV_8UC3, cv::Scalar(10, 200, 30));
        writeImage((voc + "/SegmentationClass/" + q(first) + ".png").toStdString(), odd);
        const Run palette = cli(common + QStringList{"--out", path("voc-palette")});
        QCOMPARE(palette.code, 2);
        QVERIFY2(palette.err.contains(q(first) + ".png") && palette.err.contains("palette"), qPrintable(palette.err));
    }

    // evaluate waterbirds end to end on the tiny data in both layouts (tests/data/waterbirds):
    // both protocols, the tables' metrics consistent with the group accuracies, the record
    // naming the data by SHA-256, a rerun resuming from the image cache, other settings into the
    // same folder refused, bad metadata a one-line error naming the file and the problem.
    void evaluateWaterbirds() {
        const QString data = q(vitscope::test::source("tests/data/waterbirds/groupdro"));
        const QString model = q(oracle("clip-tiny/hf")), heads = path("wb-heads.txt"), out = path("wb-textspan");
        {
            QFile f(heads);
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write("# heads as the reference writes them, (layer, head), or as vitscope names them\n(2, 1)\n1.0\n");
        }
        const QStringList common{"evaluate", "waterbirds", "--model", model, "--data", data};
        const Run first = cli(common + QStringList{"--heads", heads, "--out", out});
        QVERIFY2(first.code == 0, qPrintable(first.err));
        auto readJson = [](const QString& file) {
            QFile f(file);
            return f.open(QIODevice::ReadOnly) ? nlohmann::json::parse(f.readAll().toStdString()) : nlohmann::json();
        };
        const auto results = readJson(out + "/results.json");
        QCOMPARE(results["protocol"].get<std::string>(), std::string("textspan"));
        QCOMPARE(results["rows"][0]["setting"].get<std::string>(), std::string("Baseline"));
        QCOMPARE(results["rows"][1]["setting"].get<std::string>(), std::string("Replaced"));
        const char* groups[] = {"landbird_on_land", "landbird_on_water", "waterbird_on_land", "waterbird_on_water"};
        for (const char* g : groups) QCOMPARE(results["group_counts"][g].get<int>(), 2);
        for (const auto& row : results["rows"]) {
            double sum = 0, worst = 100;
            for (const char* g : groups) sum += row[g].get<double>(), worst = std::min(worst, row[g].get<double>());
            QVERIFY(std::abs(row["average_group"].get<double>() - sum / 4) < 1e-9);
            QVERIFY(std::abs(row["full"].get<double>() - sum / 4) < 1e-9);  // equal groups: full = the mean
            QVERIFY(std::abs(row["worst_group"].get<double>() - worst) < 1e-9);
        }
        const std::vector<std::string> ablated = results["ablated"].get<std::vector<std::string>>();
        for (const char* c : {"2.1", "1.0", "embed", "mlp.0", "mlp.2"})
            QVERIFY2(std::find(ablated.begin(), ablated.end(), c) != ablated.end(), c);
        QCOMPARE(ablated.size(), std::size_t(2 + 1 + 3));  // 3 layers, all among the last 4: no other head
        const auto record = readJson(out + "/record.json");
        QCOMPARE(record["data_sha256"].get<std::string>(), fileSha256(data.toStdString() + "/metadata.csv"));
        QCOMPARE(record["model_sha256"].get<std::string>(), fileSha256(loadModel(oracle("clip-tiny/hf")).info.weightsPath));
        QCOMPARE(record["images"].get<int>(), 8);
        QCOMPARE(record["templates_used"].get<std::string>(), std::string("resources/templates/openai-imagenet.txt"));  // the references' 80
        for (const char* f : {"results.md", "results.csv", "progress.jsonl", "cache/manifest.json"}) QVERIFY2(QFileInfo::exists(out + "/" + f), f);
        // A rerun decomposes nothing again and gives the same table.
        QVERIFY(QFile::remove(out + "/results.json"));
        const Run again = cli(common + QStringList{"--heads", heads, "--out", out});
        QVERIFY2(again.code == 0, qPrintable(again.err));
        QVERIFY2(again.out.contains("resuming the run") && again.out.contains("resuming: 8 of 8 images already decomposed"), qPrintable(again.out));
        QCOMPARE(readJson(out + "/results.json")["rows"], results["rows"]);
        // Other settings into the same folder: refused, naming the progress file.
        const Run other = cli(common + QStringList{"--heads", "2.0", "--out", out});
        QCOMPARE(other.code, 2);
        QVERIFY2(other.err.contains("progress.jsonl") && other.err.contains("other settings"), qPrintable(other.err));
        // The reference's own list for ViT-B-16 (resources/waterbirds) is read, and refused by a 3-layer model, naming the head.
        const Run b16 = cli(common + QStringList{"--heads", q(vitscope::test::source("resources/waterbirds/textspan-heads-ViT-B-16.txt")), "--out", path("wb-b16")});
        QCOMPARE(b16.code, 2);
        QVERIFY2(b16.err.contains("11.6") && !b16.err.trimmed().contains('\n'), qPrintable(b16.err));
        // vit-decompose: its top components by spurious minus bird words, before and after.
        const Run vd = cli(common + QStringList{"--protocol", "vit-decompose", "--top", "3", "--out", path("wb-vd")});
        QVERIFY2(vd.code == 0, qPrintable(vd.err));
        const auto vdr = readJson(path("wb-vd") + "/results.json");
        QCOMPARE(vdr["rows"][0]["setting"].get<std::string>(), std::string("before"));
        QCOMPARE(vdr["ranked"].size(), std::size_t(3));
        QCOMPARE(vdr["ablated"].size(), std::size_t(3));
        QVERIFY(vdr["ranked"][0]["score_difference"].get<double>() >= vdr["ranked"][2]["score_difference"].get<double>());
        // The textspan head list is refused by vit-decompose, not ignored.
        const Run mixed = cli(common + QStringList{"--protocol", "vit-decompose", "--heads", heads, "--out", path("wb-mixed")});
        QCOMPARE(mixed.code, 2);
        QVERIFY2(mixed.err.contains("--heads"), qPrintable(mixed.err));
        // vit-decompose's own archives: class folders, the place in the file name.
        const Run folders = cli({"evaluate", "waterbirds", "--model", model, "--data", q(vitscope::test::source("tests/data/waterbirds/folders")),
                                 "--protocol", "vit-decompose", "--top", "2", "--out", path("wb-folders")});
        QVERIFY2(folders.code == 0, qPrintable(folders.err));
        QCOMPARE(readJson(path("wb-folders") + "/record.json")["layout"].get<std::string>(), std::string("vit-decompose class folders"));
        for (const char* g : groups) QCOMPARE(readJson(path("wb-folders") + "/results.json")["group_counts"][g].get<int>(), 1);
        // Bad metadata: one line naming the file and what is wrong.
        const std::string meta = readFileText(data.toStdString() + "/metadata.csv");
        auto badRun = [&](const char* name, const std::string& text) -> Run {
            const QString dir = path(name);
            QDir().mkpath(dir);
            writeFileAtomic(dir.toStdString() + "/metadata.csv", text);
            return cli({"evaluate", "waterbirds", "--model", model, "--data", dir, "--out", dir + "/out"});
        };
        std::string noPlace = meta;
        noPlace.replace(noPlace.find(",place,"), 7, ",where,");
        const Run missing = badRun("wb-bad1", noPlace);
        QCOMPARE(missing.code, 2);
        QVERIFY2(missing.err.contains("metadata.csv") && missing.err.contains("no column place") && !missing.err.trimmed().contains('\n'),
                 qPrintable(missing.err));
        std::string badY = meta;
        badY.replace(badY.find(",0,0,0,"), 7, ",7,0,0,");
        const Run value = badRun("wb-bad2", badY);
        QCOMPARE(value.code, 2);
        QVERIFY2(value.err.contains("metadata.csv") && value.err.contains("line 2") && value.err.contains("column y"), qPrintable(value.err));
        const Run noImage = badRun("wb-bad3", meta);  // the images are not beside this copy
        QCOMPARE(noImage.code, 2);
        QVERIFY2(noImage.err.contains("metadata.csv") && noImage.err.contains("Nuthatch_0005.png") && noImage.err.contains("is not in"),
                 qPrintable(noImage.err));
    }

    // evaluate waterbirds sharded as a Slurm job array runs it (--shard I/N, or the array's
    // variables), then gathered by a run without --shard: the direct run's table, for 2 and 3
    // shards; a shard the array did not run is built by the gathering run.
    void waterbirdsSharded() {
        const QString data = q(vitscope::test::source("tests/data/waterbirds/groupdro"));
        const QStringList common{"evaluate", "waterbirds", "--model", q(oracle("clip-tiny/hf")), "--data", data, "--heads", "2.1,1.0", "--batch", "2"};
        auto rowsOf = [](const QString& out) {
            QFile f(out + "/results.json");
            return f.open(QIODevice::ReadOnly) ? nlohmann::json::parse(f.readAll().toStdString())["rows"] : nlohmann::json();
        };
        const Run direct = cli(common + QStringList{"--out", path("wbs-direct")});
        QVERIFY2(direct.code == 0, qPrintable(direct.err));
        const auto want = rowsOf(path("wbs-direct"));
        QCOMPARE(int(want.size()), 2);
        // 2 shards through --shard.
        const QString two = path("wbs-2");
        for (const char* sh : {"0/2", "1/2"}) {
            const Run part = cli(common + QStringList{"--shard", sh, "--out", two});
            QVERIFY2(part.code == 0 && part.out.contains("shard done"), qPrintable(part.err + part.out));
        }
        QVERIFY(QFileInfo::exists(two + "/progress-0-of-2.jsonl") && QFileInfo::exists(two + "/progress-1-of-2.jsonl"));
        QVERIFY(!QFileInfo::exists(two + "/results.json"));
        const Run gathered = cli(common + QStringList{"--out", two});
        QVERIFY2(gathered.code == 0 && gathered.out.contains("gathered 2 shards") && gathered.out.contains("(0 finished by this run)"),
                 qPrintable(gathered.err + gathered.out));
        QCOMPARE(rowsOf(two), want);
        // 3 shards: task 0 by --shard, task 1 from a Slurm job array's variables, task 2 never run.
        const QString three = path("wbs-3");
        QCOMPARE(cli(common + QStringList{"--shard", "0/3", "--out", three}).code, 0);
        const Run slurm = cliWith(common + QStringList{"--out", three},
                                  {{"SLURM_ARRAY_TASK_ID", "1"}, {"SLURM_ARRAY_TASK_MIN", "0"}, {"SLURM_ARRAY_TASK_COUNT", "3"}});
        QVERIFY2(slurm.code == 0 && slurm.out.contains("progress-1-of-3.jsonl"), qPrintable(slurm.err + slurm.out));
        const Run rest = cli(common + QStringList{"--out", three});
        QVERIFY2(rest.code == 0 && rest.out.contains("gathered 3 shards") && rest.out.contains("(1 finished by this run)"),
                 qPrintable(rest.err + rest.out));
        QCOMPARE(rowsOf(three), want);
        // A shard of other settings into the same folder: refused, naming its progress file.
        const Run other = cli(QStringList{"evaluate", "waterbirds", "--model", q(oracle("clip-tiny/hf")), "--data", data, "--heads", "2.0",
                                          "--batch", "2", "--shard", "0/2", "--out", two});
        QCOMPARE(other.code, 2);
        QVERIFY2(other.err.contains("progress") && other.err.contains("other settings"), qPrintable(other.err));
    }

    // The shapes world in the Waterbirds layout, evaluated on the spurious model with the world's
    // own classes and descriptions (the fresh-machine route of docs/measure-waterbirds.sh).
    void shapesWaterbirdsWorld() {
        const QString world = path("wb-world");
        const Run w = cli({"shapes", "waterbirds", "--out", world, "--count", "6"});
        QVERIFY2(w.code == 0, qPrintable(w.err));
        const auto rows = readCsvTable((world + "/metadata.csv").toStdString());
        QCOMPARE(rows.size(), std::size_t(18));
        QCOMPARE(rows[0].at("split"), std::string("0"));
        QCOMPARE(rows[17].at("split"), std::string("2"));
        for (const auto& r : rows) QCOMPARE(r.at("place") == "1", r.at("place_filename").rfind("water", 0) == 0);
        const Run e = cli({"evaluate", "waterbirds", "--model", q(vitscope::test::source("models/shapes-clip-spurious")), "--data", world,
                           "--classes", world + "/classes.tsv", "--spurious", world + "/spurious.txt", "--core", world + "/core.txt",
                           "--top", "3", "--out", path("wb-shapes")});
        QVERIFY2(e.code == 0, qPrintable(e.err));
        QFile f(path("wb-shapes") + "/results.json");
        QVERIFY(f.open(QIODevice::ReadOnly));
        const auto j = nlohmann::json::parse(f.readAll().toStdString());
        QVERIFY2(j["heads_source"].get<std::string>().find("discovered") != std::string::npos, j.dump().c_str());
        QCOMPARE(j["ranked"].size(), std::size_t(3));
        // A non-CLIP model (vit-decompose's own case): ranked through its aligner, classified by a
        // linear head trained on split 0; textspan and class folders are refused with it.
        const QString vit = q(vitscope::test::source("models/shapes-vit")), aligner = vit + "/aligner.safetensors";
        const QStringList nonClip{"evaluate", "waterbirds", "--model", vit, "--aligner", aligner, "--data", world,
                                  "--spurious", world + "/spurious.txt", "--core", world + "/core.txt", "--top", "3"};
        const Run v = cli(nonClip + QStringList{"--protocol", "vit-decompose", "--out", path("wb-vit")});
        QVERIFY2(v.code == 0, qPrintable(v.err));
        QFile rf(path("wb-vit") + "/record.json");
        QVERIFY(rf.open(QIODevice::ReadOnly));
        const auto record = nlohmann::json::parse(rf.readAll().toStdString());
        QVERIFY2(record["classifier"].get<std::string>().find("linear head") != std::string::npos, record.dump().c_str());
        QVERIFY(!record["aligner_sha256"].get<std::string>().empty());
        const Run ts = cli(nonClip + QStringList{"--out", path("wb-vit-ts")});
        QCOMPARE(ts.code, 2);
        QVERIFY2(ts.err.contains("--aligner") && ts.err.contains("textspan"), qPrintable(ts.err));
        const Run folders = cli({"evaluate", "waterbirds", "--model", vit, "--aligner", aligner, "--data",
                                 q(vitscope::test::source("tests/data/waterbirds/folders")), "--protocol", "vit-decompose", "--out", path("wb-vit-f")});
        QCOMPARE(folders.code, 2);
        QVERIFY2(folders.err.contains("split 0"), qPrintable(folders.err));
    }

    // An interrupted run (SIGTERM, as Ctrl-C) keeps the images it decomposed; the same command
    // resumes from them and the finished table counts every image once.
    void waterbirdsResumesAnInterruptedRun() {
        const QString world = path("wb-big"), out = path("wb-interrupted");
        QCOMPARE(cli({"shapes", "waterbirds", "--out", world, "--count", "1500"}).code, 0);
        const QStringList args{"evaluate", "waterbirds", "--model", q(vitscope::test::source("models/shapes-clip-spurious")), "--data", world,
                               "--classes", world + "/classes.tsv", "--spurious", world + "/spurious.txt", "--core", world + "/core.txt",
                               "--batch", "16", "--out", out};
        QProcess p;
        p.start(VITSCOPE_CLI, args);
        QByteArray err;
        for (int i = 0; i < 1200 && p.state() != QProcess::NotRunning && !err.contains("caching images"); ++i) {
            p.waitForReadyRead(50);
            err += p.readAllStandardError();
        }
        QTest::qWait(300);
        p.terminate();
        QVERIFY(p.waitForFinished(60000));
        if (p.exitStatus() == QProcess::NormalExit && p.exitCode() == 0) QSKIP("the run finished before it could be interrupted");
        const Run resumed = cli(args);
        QVERIFY2(resumed.code == 0, qPrintable(resumed.err));
        const QRegularExpressionMatch m = QRegularExpression("resuming: (\\d+) of 1500 images already decomposed").match(resumed.out);
        QVERIFY2(m.hasMatch(), qPrintable(resumed.out));
        const int before = m.captured(1).toInt();
        QVERIFY2(before > 0 && before < 1500, qPrintable(resumed.out));
        QFile f(out + "/results.json");
        QVERIFY(f.open(QIODevice::ReadOnly));
        int total = 0;
        const nlohmann::json counts = nlohmann::json::parse(f.readAll().toStdString())["group_counts"];
        for (auto it = counts.begin(); it != counts.end(); ++it) total += it.value().get<int>();
        QCOMPARE(total, 1500);
    }

    // Swin through its aligner in evaluate-heatmaps: "all" is the methods Swin defines.
    void evaluateHeatmapsOnSwin() {
        const QString world = path("swin-world");
        QCOMPARE(cli({"shapes", "generate", "--out", world, "--count", "12", "--seed", "8"}).code, 0);
        const QString swin = q(test::source("models/shapes-swin"));
        const QString aligner = swin + "/aligner.safetensors";
        const Run r = cli({"evaluate-heatmaps", "--model", swin, "--aligner", aligner, "--dataset", world, "--prompt", "a {color} object",
                           "--out", path("eval-swin.csv")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const std::string csv = readFileText(path("eval-swin.csv").toStdString());
        QVERIFY2(csv.find("decomposition,12,") != std::string::npos && csv.find("raw,12,") != std::string::npos, csv.c_str());
        QVERIFY(csv.find("surgery") == std::string::npos && csv.find("rollout") == std::string::npos);
        const Run bad = cli({"evaluate-heatmaps", "--model", swin, "--aligner", aligner, "--dataset", world, "--methods", "rollout",
                             "--out", path("eval-bad.csv")});
        QCOMPARE(bad.code, 2);
        QVERIFY2(bad.err.contains("rollout") && !bad.err.trimmed().contains('\n'), qPrintable(bad.err));
    }

    // The model's own scores beside the embeddings: CLIP's scaled cosines against the oracle, and
    // SigLIP's sigmoid(scale * cos + bias) with texts through SentencePiece at its context.
    void embedScoresAreTheModelsOwn() {
        const nlohmann::json texts = nlohmann::json::parse(readFileText(oracle("clip-tiny/texts.json")));
        QStringList args{"embed", "--model", q(oracle("clip-tiny/hf")), "--pixels", q(oracle("clip-tiny/pixels.npy")), "--out", path("clipscores")};
        for (const auto& t : texts) args << "--text" << q(t.get<std::string>());
        const Run clip = cli(args);
        QVERIFY2(clip.code == 0, qPrintable(clip.err));
        const at::Tensor logits = readNpyTensor(path("clipscores/logits_per_image.npy").toStdString());
        QVERIFY(maxAbsDiff(logits, readNpyTensor(oracle("clip-tiny/logits_per_image.npy"))) < 1e-3);
        const at::Tensor probs = readNpyTensor(path("clipscores/probs.npy").toStdString());
        QVERIFY(maxAbsDiff(probs.sum(1), at::ones({3})) < 1e-5);

        RandomVitSpec s;
        s.layout = RandomLayout::HfSiglip, s.imageSize = 32, s.patchSize = 8, s.width = 64, s.layers = 2, s.textWidth = 64;
        s.contextLength = 16, s.vocabSize = 90, s.seed = 61;
        const std::string dir = path("siglip").toStdString();
        QVERIFY(QDir().mkpath(q(dir)));
        writeSafetensorsTensors(dir + "/model.safetensors", randomVitStateDict(s));
        writeFileAtomic(dir + "/config.json", std::string(R"({"model_type": "siglip", "vision_config": {"num_attention_heads": 2}, "text_config": {"num_attention_heads": 2}})"));
        QVERIFY(QFile::copy(q(test::source("tests/data/siglip-spm/spiece.model")), q(dir + "/spiece.model")));
        const Run tok = cli({"tokenize", "--model", q(dir), "--text", "a red circle", "--text", "", "--out", path("sigtok.npy")});
        QVERIFY2(tok.code == 0, qPrintable(tok.err));
        const at::Tensor ids = readNpyTensor(path("sigtok.npy").toStdString());
        QCOMPARE(ids.sizes().vec(), (std::vector<int64_t>{2, 16}));  // the model's context
        QCOMPARE(ids[1][0].item<int64_t>(), int64_t(1));              // an empty text is the end id, padded with it
        QCOMPARE(ids[1].sum().item<int64_t>(), int64_t(16));
        at::manual_seed(9130);  // the pixels are part of the test: fixed
        writeNpyTensor(path("px.npy").toStdString(), at::randn({2, 3, 32, 32}));
        const Run sig = cli({"embed", "--model", q(dir), "--pixels", path("px.npy"), "--text", "a red circle", "--text", "a blue square",
                             "--out", path("sigscores")});
        QVERIFY2(sig.code == 0, qPrintable(sig.err));
        const at::Tensor img = readNpyTensor(path("sigscores/image_embeds.npy").toStdString());
        const at::Tensor txt = readNpyTensor(path("sigscores/text_embeds.npy").toStdString());
        const at::Tensor cos = at::matmul(img / img.norm(2, 1, true), (txt / txt.norm(2, 1, true)).t());
        const at::Tensor sl = readNpyTensor(path("sigscores/logits_per_image.npy").toStdString());
        QVERIFY(maxAbsDiff(sl, cos * 10.0 - 10.0) < 1e-4);  // the random file's logit_scale = log 10, logit_bias = -10
        QVERIFY(maxAbsDiff(readNpyTensor(path("sigscores/probs.npy").toStdString()), at::sigmoid(sl)) < 1e-6);

        // The image commands on SigLIP: the ledger is complete (pool.mlp among its rows) and a
        // pooling head's heatmap is drawn from its per-token terms.
        cv::Mat img8(40, 50, CV_8UC3, cv::Scalar(30, 60, 200));
        img8(cv::Rect(15, 10, 20, 20)).setTo(cv::Scalar(0, 0, 255));
        writeImage(path("sig.png").toStdString(), img8);
        const Run ledger = cli({"ledger", "--model", q(dir), "--image", path("sig.png"), "--text", "a red circle", "--out", path("sigledger.json")});
        QVERIFY2(ledger.code == 0, qPrintable(ledger.err));
        const auto lj = nlohmann::json::parse(readFileText(path("sigledger.json").toStdString()));
        QVERIFY2(lj.dump().find("pool.mlp") != std::string::npos, lj.dump().c_str());
        QVERIFY(std::abs(lj["residual"].get<double>()) < 1e-4 * std::max(1.0, std::abs(lj["score"].get<double>())));
        const Run heat = cli({"heatmap", "--model", q(dir), "--image", path("sig.png"), "--text", "a red circle", "--heads", "pool.h1,1.0",
                              "--out", path("sigmap.png"), "--npy", path("sigmap.npy")});
        QVERIFY2(heat.code == 0, qPrintable(heat.err));
        QCOMPARE(readNpyTensor(path("sigmap.npy").toStdString()).sizes().vec(), (std::vector<int64_t>{4, 4}));
        const Run bad = cli({"heatmap", "--model", q(dir), "--image", path("sig.png"), "--text", "a red circle", "--heads", "pool.h2",
                             "--out", path("bad.png")});
        QCOMPARE(bad.code, 2);
        QVERIFY2(bad.err.contains("pool.h2") && bad.err.contains("pool.h0..pool.h1"), qPrintable(bad.err));
    }

    void errorsAreOneLineWithExitCode2_data() {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<QString>("expected");
        QTest::newRow("missing-model") << QStringList{"info", "--model", "/nonexistent/model.safetensors"} << "no such model";
        QTest::newRow("bad-convention") << QStringList{"decompose", "--model", q(oracle("clip-tiny/hf")), "--pixels",
                                                       q(oracle("clip-tiny/pixels.npy")), "--out", "/tmp/x", "--convention", "nope"}
                                        << "unknown convention";
        QTest::newRow("non-image") << QStringList{"embed", "--model", q(oracle("clip-tiny/hf")), "--image",
                                                  q(oracle("clip-tiny/texts.json")), "--out", "/tmp/x"}
                                   << "not a readable image";
        QTest::newRow("wrong-pixels") << QStringList{"embed", "--model", q(oracle("clip-tiny/hf")), "--pixels",
                                                     q(oracle("clip-tiny/tokens.npy")), "--out", "/tmp/x"}
                                      << "expected pixels";
        const QString swin = q(VITSCOPE_SOURCE_DIR) + "/tests/data/vit-decompose/swin";
        const QString swinPixels = q(VITSCOPE_SOURCE_DIR) + "/tests/data/vit-decompose/swin_pixels.npy";
        QTest::newRow("bad-from-block") << QStringList{"decompose", "--model", swin, "--pixels", swinPixels, "--out", "/tmp/x",
                                                       "--convention", "vit-decompose", "--from-block", "2"}
                                        << "--from-block 2: expected STAGE,BLOCK";
        QTest::newRow("from-block-outside") << QStringList{"decompose", "--model", swin, "--pixels", swinPixels, "--out", "/tmp/x",
                                                           "--convention", "vit-decompose", "--from-block", "2,0"}
                                            << "is not a block of this Swin";
        QTest::newRow("from-block-without-vit-decompose") << QStringList{"decompose", "--model", swin, "--pixels", swinPixels, "--out",
                                                                         "/tmp/x", "--from-block", "1,0"}
                                                          << "needs --convention vit-decompose";
        QTest::newRow("vit-decompose-on-vit") << QStringList{"decompose", "--model", q(oracle("vit-tiny/timm_vit.safetensors")), "--pixels",
                                                             q(oracle("vit-tiny/pixels.npy")), "--out", "/tmp/x", "--convention",
                                                             "vit-decompose"}
                                              << "is built for Swin and MaxViT only";
        QTest::newRow("unknown-flag") << QStringList{"info", "--modle", "x"} << "";
        QTest::newRow("no-command") << QStringList{} << "";
    }

    void errorsAreOneLineWithExitCode2() {
        QFETCH(QStringList, args);
        QFETCH(QString, expected);
        const Run r = cli(args);
        QCOMPARE(r.code, 2);
        const QString err = r.err.trimmed();
        QVERIFY2(!err.isEmpty() && !err.contains('\n'), qPrintable(err));
        QVERIFY2(err.contains(expected), qPrintable(err));
    }

    // The analysis commands end to end on the bundled model and a generated world.
    void analysisCommands() {
        const QString clip = QString(VITSCOPE_SOURCE_DIR) + "/models/shapes-clip";
        const QString world = path("world"), cache = path("cache");
        QCOMPARE(cli({"shapes", "generate", "--out", world, "--count", "24", "--seed", "8"}).code, 0);
        Run r = cli({"cache", "build", "--model", clip, "--images", world + "/images", "--out", cache, "--batch", "10"});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QVERIFY(r.out.contains("24 images cached"));
        r = cli({"cache", "build", "--model", clip, "--images", world + "/images", "--out", cache});
        QVERIFY2(r.code == 0 && r.out.contains("already complete"), qPrintable(r.out + r.err));

        const QString pool = QString(VITSCOPE_SOURCE_DIR) + "/resources/shapes/text_pool.txt";
        r = cli({"textspan", "--cache", cache, "--texts", pool, "--per-head", "3", "--out", path("heads.json")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const auto heads = nlohmann::json::parse(readFileText(path("heads.json").toStdString()));
        QCOMPARE(heads["heads"].size(), std::size_t(16));
        QCOMPARE(heads["heads"][0]["texts"].size(), std::size_t(3));
        QVERIFY(heads["heads"][0]["texts"][2]["cumulative"].get<double>() <= 1.0);

        // With labels: the accuracy check of the chosen texts (heads reduced to their text spans).
        std::string colors;
        for (const char* c : {"red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink"}) colors += std::string(c) + "\ta " + c + " object\n";
        writeFileAtomic(path("colors.tsv").toStdString(), colors);
        r = cli({"textspan", "--cache", cache, "--texts", pool, "--per-head", "2", "--labels", world + "/labels.csv", "--label-column", "color",
                 "--classes", path("colors.tsv"), "--out", path("heads2.json")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const auto check = nlohmann::json::parse(readFileText(path("heads2.json").toStdString()))["accuracy_check"];
        QVERIFY(check["original"].get<double>() > 0.5);  // the bundled model knows colors
        // The 4-layer model's last 4 layers are all its layers: nothing earlier to mean-ablate.
        QCOMPARE(check["earlier_heads_mean_ablated"].get<int>(), 0);
        QCOMPARE(check["earlier_heads_mean_ablated_accuracy"].get<double>(), check["original"].get<double>());
        QVERIFY(check["described_heads_mean_ablated"].get<double>() <= check["original"].get<double>());
        // Two texts per head keep more of what the heads carry than their means do.
        QVERIFY(check["described_heads_replaced_by_text_span"].get<double>() > check["described_heads_mean_ablated"].get<double>());
        // The reference protocol in one command: a textspan-convention cache built, then TextSpan.
        r = cli({"textspan", "--cache", path("cache-ts"), "--model", clip, "--images", world + "/images", "--texts", pool,
                 "--per-head", "2", "--out", path("heads-ts.json")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QCOMPARE(nlohmann::json::parse(readFileText(path("heads-ts.json").toStdString()))["convention"].get<std::string>(),
                 std::string("textspan"));
        QCOMPARE(nlohmann::json::parse(readFileText(path("cache-ts/manifest.json").toStdString()))["settings"]["convention"].get<std::string>(),
                 std::string("textspan"));
        // Describing the last 2 layers: the heads of layers 0-1 are mean-ablated first.
        r = cli({"textspan", "--cache", cache, "--texts", pool, "--per-head", "2", "--layers", "last:2", "--labels",
                 world + "/labels.csv", "--label-column", "color", "--classes", path("colors.tsv"), "--out", path("heads3.json")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const auto last2 = nlohmann::json::parse(readFileText(path("heads3.json").toStdString()));
        QCOMPARE(last2["heads"].size(), std::size_t(8));
        QCOMPARE(last2["accuracy_check"]["earlier_heads_mean_ablated"].get<int>(), 8);
        QCOMPARE(last2["convention"].get<std::string>(), std::string("exact"));

        r = cli({"rank", "--cache", cache, "--property", "color", "--out", path("rank.csv")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const QString csv = QString::fromStdString(readFileText(path("rank.csv").toStdString()));
        QCOMPARE(csv.count('\n'), 1 + 16 + 4 + 1);
        QVERIFY(csv.startsWith("rank,component,layer,head,score\n1,"));

        r = cli({"retrieve", "--cache", cache, "--text", "a red object", "--heads", "3.1,3.2", "--top", "5", "--out", path("ret.json")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const auto ret = nlohmann::json::parse(readFileText(path("ret.json").toStdString()));
        QCOMPARE(ret["global"].size(), std::size_t(5));
        QCOMPARE(ret["restricted"].size(), std::size_t(5));
        r = cli({"retrieve", "--cache", cache, "--image", world + "/images/000003.png", "--property", "color", "--top", "3", "--out", path("ret2.json")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const auto ret2 = nlohmann::json::parse(readFileText(path("ret2.json").toStdString()));
        QVERIFY(ret2["global"][0]["path"].get<std::string>().find("000003.png") != std::string::npos);

        r = cli({"heatmap", "--model", clip, "--image", world + "/images/000001.png", "--text", "a red object", "--method", "surgery",
                 "--out", path("map.png"), "--npy", path("map.npy")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const cv::Mat png = readImage(path("map.png").toStdString());
        QVERIFY(png.cols > 384 && png.rows > 384);
        QCOMPARE(readNpyTensor(path("map.npy").toStdString()).sizes().vec(), (std::vector<int64_t>{8, 8}));

        r = cli({"evaluate-heatmaps", "--model", clip, "--dataset", world, "--count", "8", "--prompt", "a {color} object", "--out", path("eval.csv")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        for (const char* m : {"decomposition", "surgery", "raw", "attention", "rollout"}) QVERIFY(r.out.contains(m));
        // The ledger from the command line: the terms sum to the score, which is <image, text> of embed.
        const QString scene = world + "/images/000002.png";
        r = cli({"ledger", "--model", clip, "--image", scene, "--text", "a red object", "--out", path("ledger.json")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const auto ledger = nlohmann::json::parse(readFileText(path("ledger.json").toStdString()));
        QCOMPARE(ledger["rows"].size(), std::size_t(1 + 16 + 4 + 4 + 1));
        double sum = 0;
        for (const auto& row : ledger["rows"]) sum += row["score"].get<double>();
        QVERIFY(std::abs(sum - ledger["score"].get<double>()) < 1e-4 * std::max(1.0, std::abs(sum)));
        r = cli({"embed", "--model", clip, "--image", scene, "--text", "a red object", "--out", path("ledger-embed")});
        QCOMPARE(r.code, 0);
        const at::Tensor img = readNpyTensor(path("ledger-embed/image_embeds.npy").toStdString())[0];
        const at::Tensor txt = readNpyTensor(path("ledger-embed/text_embeds.npy").toStdString())[0];
        const double score = at::dot(img, txt / txt.norm()).item<double>();
        QVERIFY2(std::abs(score - ledger["score"].get<double>()) < 1e-4 * std::max(1.0, std::abs(score)),
                 qPrintable(QString("%1 vs %2").arg(score).arg(ledger["score"].get<double>())));
        // Text grounding: only the scenes with a distractor, prompted for it.
        int withDistractor = 0;
        for (const auto& row : readCsvTable(world.toStdString() + "/labels.csv")) withDistractor += !row.at("distractor_mask").empty();
        QVERIFY(withDistractor > 0);
        r = cli({"evaluate-heatmaps", "--model", clip, "--dataset", world, "--prompt", "a {color} object", "--methods", "decomposition",
                 "--target", "distractor", "--out", path("eval-d.csv")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const QString evalD = QString::fromStdString(readFileText(path("eval-d.csv").toStdString()));
        QVERIFY2(evalD.contains(QString("decomposition,%1,").arg(withDistractor)), qPrintable(evalD));

        // Ablation on the spurious split, means from a training split.
        const QString train = path("sp-train"), test = path("sp-test");
        QCOMPARE(cli({"shapes", "generate", "--out", train, "--count", "20", "--seed", "9", "--split", "spurious-train"}).code, 0);
        QCOMPARE(cli({"shapes", "generate", "--out", test, "--count", "20", "--seed", "10", "--split", "spurious-test"}).code, 0);
        QCOMPARE(cli({"cache", "build", "--model", clip, "--images", train + "/images", "--out", path("c-train")}).code, 0);
        QCOMPARE(cli({"cache", "build", "--model", clip, "--images", test + "/images", "--out", path("c-test")}).code, 0);
        writeFileAtomic(path("groups.tsv").toStdString(), std::string("0\ta circle\n0\ta square\n0\ta hexagon\n0\ta heart\n1\ta triangle\n1\ta diamond\n1\ta star\n1\ta cross\n"));
        r = cli({"ablate", "--cache", path("c-test"), "--reference", path("c-train"), "--labels", test + "/labels.csv", "--label-column", "group",
                 "--classes", path("groups.tsv"), "--group-columns", "group,background", "--discover-spurious", "--spurious",
                 "an object on a grass background,an object on a water background", "--core", "a circle,a star", "--top", "2", "--out", path("abl.json")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const auto abl = nlohmann::json::parse(readFileText(path("abl.json").toStdString()));
        QCOMPARE(abl["ablated"].size(), std::size_t(2));
        QVERIFY(abl["before"]["groups"].contains("0/grass"));
        // The per-group figures add up to the overall accuracy (count-weighted), before and after.
        for (const char* when : {"before", "after"}) {
            double correct = 0, total = 0;
            for (const auto& [name, g] : abl[when]["groups"].items()) {
                correct += g["accuracy"].get<double>() * g["count"].get<double>();
                total += g["count"].get<double>();
            }
            QCOMPARE(total, 20.0);
            QVERIFY(std::abs(correct / total - abl[when]["accuracy"].get<double>()) < 1e-9);
        }

        // Bad input: one line, exit 2, naming the problem.
        auto fails = [&](const QStringList& args, const QString& expected) {
            const Run bad = cli(args);
            QCOMPARE(bad.code, 2);
            QVERIFY2(bad.err.trimmed().count('\n') == 0 && bad.err.contains(expected), qPrintable(bad.err));
        };
        fails({"retrieve", "--cache", cache, "--text", "a red object", "--heads", "9.9", "--out", path("x.json")}, "9.9");
        writeFileAtomic(path("empty.txt").toStdString(), std::string("\n# nothing\n"));
        fails({"textspan", "--cache", cache, "--texts", path("empty.txt"), "--out", path("x.json")}, "holds no texts");
        fails({"textspan", "--cache", cache, "--model", q(oracle("clip-tiny/open_clip")), "--texts", pool, "--out", path("x.json")}, "another model");
        fails({"heatmap", "--model", clip, "--image", path("empty.txt"), "--text", "a circle", "--out", path("x.png")}, "empty.txt");
        fails({"heatmap", "--model", clip, "--image", world + "/images/000001.png", "--text", "a circle", "--method", "saliency", "--out", path("x.png")}, "saliency");
        fails({"ablate", "--cache", cache, "--reference", cache, "--labels", world + "/labels.csv", "--label-column", "group", "--classes",
               path("groups.tsv"), "--heads", "3.1", "--out", path("x.json")}, "");
        QFile::copy(cache + "/manifest.json", path("manifest-backup.json"));
        writeFileAtomic((cache + "/manifest.json").toStdString(), std::string("{broken"));
        fails({"rank", "--cache", cache, "--property", "color", "--out", path("x.csv")}, "manifest.json");
    }

    // The gradient methods' options (issue 27): every method in --help, the label list used by
    // Grad-CAM (from --labels or --reference-texts), options a method does not use refused in one
    // line, --class on a classifier.
    void gradientHeatmapOptions() {
        const QString help = cli({"heatmap", "--help"}).out;
        for (HeatmapMethod m : allHeatmapMethods()) QVERIFY2(help.contains(QString(heatmapMethodName(m)) + ":"), heatmapMethodName(m));
        const QString clip = QString(VITSCOPE_SOURCE_DIR) + "/models/shapes-clip";
        const QString vit = QString(VITSCOPE_SOURCE_DIR) + "/models/shapes-vit";
        const QString world = path("gradient-world");
        QCOMPARE(cli({"shapes", "generate", "--out", world, "--count", "2", "--seed", "27"}).code, 0);
        const QString image = world + "/images/000001.png";
        writeFileAtomic(path("labels.txt").toStdString(), std::string("a red object\na blue object\na green object\n"));
        auto map = [&](const QStringList& extra, const char* npy) {
            const Run r = cli(QStringList{"heatmap", "--model", clip, "--image", image, "--text", "a red object", "--method", "gradcam", "--out",
                                          path("g.png"), "--npy", path(npy)} +
                              extra);
            if (r.code != 0) qWarning("%s", qPrintable(r.err));
            return r.code == 0 ? readNpyTensor(path(npy).toStdString()) : at::Tensor();
        };
        const at::Tensor viaLabels = map({"--labels", path("labels.txt")}, "labels.npy");
        const at::Tensor viaReference = map({"--reference-texts", path("labels.txt")}, "reference.npy");
        const at::Tensor logit = map({"--labels", path("labels.txt"), "--gradcam-target", "logit"}, "logit.npy");
        const at::Tensor plain = map({}, "plain.npy");
        QVERIFY(viaLabels.defined() && viaReference.defined() && logit.defined() && plain.defined());
        QCOMPARE(maxAbsDiff(viaLabels, viaReference), 0.0);  // the reference texts are the label list
        QVERIFY(maxAbsDiff(viaLabels, logit) > 1e-3);          // and the target is not the logit
        QCOMPARE(maxAbsDiff(logit, plain), 0.0);               // no list: the logit
        auto fails = [&](const QStringList& args, const QString& expected) {
            const Run bad = cli(args);
            QCOMPARE(bad.code, 2);
            QVERIFY2(bad.err.trimmed().count('\n') == 0 && bad.err.contains(expected), qPrintable(bad.err));
        };
        for (const char* method : {"chefer", "legrad"})
            fails({"heatmap", "--model", clip, "--image", image, "--text", "a red object", "--method", method, "--reference-texts", path("labels.txt"),
                   "--out", path("x.png")},
                  "--reference-texts");
        fails({"heatmap", "--model", clip, "--image", image, "--text", "a red object", "--method", "decomposition", "--labels", path("labels.txt"),
               "--out", path("x.png")},
              "--labels");
        fails({"heatmap", "--model", clip, "--image", image, "--text", "a red object", "--method", "raw", "--reference-texts", path("labels.txt"),
               "--out", path("x.png")},
              "--reference-texts");
        fails({"heatmap", "--model", clip, "--image", image, "--text", "a red object", "--method", "legrad", "--chefer-start-layer", "0",
               "--out", path("x.png")},
              "--chefer-start-layer");
        fails({"evaluate-heatmaps", "--model", clip, "--dataset", world, "--methods", "chefer,legrad", "--labels", path("labels.txt")}, "--labels");
        fails({"evaluate-heatmaps", "--model", clip, "--dataset", world, "--methods", "raw", "--gradcam-target", "logit"}, "--gradcam-target");
        fails({"heatmap", "--model", clip, "--image", image, "--text", "a red object", "--method", "gradcam", "--gradcam-target", "probability",
               "--out", path("x.png")},
              "label list");
        fails({"heatmap", "--model", clip, "--image", image, "--text", "a red object", "--method", "chefer", "--chefer-start-layer", "99",
               "--out", path("x.png")},
              "--chefer-start-layer");
        fails({"heatmap", "--model", clip, "--image", image, "--method", "chefer", "--out", path("x.png")}, "--text");
        fails({"heatmap", "--model", clip, "--image", image, "--text", "a red object", "--siglip-map", "encoder", "--out", path("x.png")},
              "--siglip-map");  // a CLIP model has no pool
        fails({"heatmap", "--model", clip, "--image", image, "--text", "a red object", "--method", "raw", "--siglip-map", "encoder",
               "--out", path("x.png")},
              "--siglip-map");
        fails({"heatmap", "--model", vit, "--image", image, "--class", "1", "--method", "raw", "--out", path("x.png")}, "--class");
        // LeGrad's input size: a larger grid from resampled position embeddings; sizes off the patch refused.
        const Run big = cli({"heatmap", "--model", clip, "--image", image, "--text", "a red object", "--method", "legrad", "--input-size", "128",
                             "--out", path("big.png"), "--npy", path("big.npy")});
        QVERIFY2(big.code == 0, qPrintable(big.err));
        const at::Tensor native = readNpyTensor(path("plain.npy").toStdString());
        QCOMPARE(readNpyTensor(path("big.npy").toStdString()).size(0), 2 * native.size(0));
        fails({"heatmap", "--model", clip, "--image", image, "--text", "a red object", "--method", "legrad", "--input-size", "100",
               "--out", path("x.png")},
              "--input-size");
        // A tower without a text side, from the command line: pixels and a text embedding as .npy
        // (the reference data's image-only SigLIP; its default map is TextSpan's SigLIP map).
        const std::string refs = std::string(VITSCOPE_SOURCE_DIR) + "/tests/data/gradient-maps/";
        writeNpyTensor(path("siglip-text.npy").toStdString(), readNpyTensor(refs + "siglip_texts.npy")[0]);
        const Run tower = cli({"heatmap", "--model", q(refs + "siglip"), "--pixels", q(refs + "pixels.npy"), "--text-embedding",
                               path("siglip-text.npy"), "--out", path("tower.png"), "--npy", path("tower.npy")});
        QVERIFY2(tower.code == 0, qPrintable(tower.err));
        QVERIFY(maxAbsDiff(readNpyTensor(path("tower.npy").toStdString()), readNpyTensor(refs + "siglip_textspan_pool.npy")) < 1e-5);
        fails({"heatmap", "--model", q(refs + "siglip"), "--pixels", q(refs + "pixels.npy"), "--text-embedding", path("siglip-text.npy"),
               "--reference-texts", path("labels.txt"), "--out", path("x.png")},
              "--reference-texts");
        fails({"heatmap", "--model", q(refs + "siglip"), "--pixels", q(refs + "labels.npy"), "--text-embedding", path("siglip-text.npy"),
               "--out", path("x.png")},
              "labels.npy");
        fails({"heatmap", "--model", clip, "--image", image, "--pixels", q(refs + "pixels.npy"), "--text", "a red object", "--out", path("x.png")},
              "--pixels");
        // A classifier's class logit: no text needed; the class changes the map.
        const Run one = cli({"heatmap", "--model", vit, "--image", image, "--class", "1", "--method", "chefer", "--out", path("c1.png"), "--npy", path("c1.npy")});
        QVERIFY2(one.code == 0, qPrintable(one.err));
        const Run two = cli({"heatmap", "--model", vit, "--image", image, "--class", "9", "--method", "chefer", "--out", path("c9.png"), "--npy", path("c9.npy")});
        QVERIFY2(two.code == 0, qPrintable(two.err));
        QVERIFY(maxAbsDiff(readNpyTensor(path("c1.npy").toStdString()), readNpyTensor(path("c9.npy").toStdString())) > 1e-3);
    }

    // align's two procedures (issue 27, item 6): the reference one records itself and its seed;
    // vitscope's options are refused with it.
    void alignProcedures() {
        const QString vit = QString(VITSCOPE_SOURCE_DIR) + "/models/shapes-vit";
        const QString clip = QString(VITSCOPE_SOURCE_DIR) + "/models/shapes-clip";
        QCOMPARE(cli({"shapes", "generate", "--out", path("align-world"), "--count", "40", "--seed", "6"}).code, 0);
        const Run r = cli({"align", "--model", vit, "--clip", clip, "--images", path("align-world") + "/images", "--out", path("ref.safetensors"),
                           "--procedure", "reference", "--seed", "3"});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QVERIFY2(r.out.contains("reference procedure") && r.out.contains("orthonormality"), qPrintable(r.out));
        const Aligner a = loadAligner(path("ref.safetensors").toStdString());
        QCOMPARE(a.settings.at("procedure"), std::string("reference"));
        QCOMPARE(a.settings.at("seed"), std::string("3"));
        const Run bad = cli({"align", "--model", vit, "--clip", clip, "--images", path("align-world") + "/images", "--out", path("x.safetensors"),
                             "--procedure", "reference", "--steps", "10"});
        QCOMPARE(bad.code, 2);
        QVERIFY2(bad.err.trimmed().count('\n') == 0 && bad.err.contains("--steps"), qPrintable(bad.err));
    }

    // project and compare (issue 30) end to end on the bundled models: [N, 2] float32 layouts in
    // the cache's order (one row per head with --points heads), text axes through heads, a model
    // matched with itself, CLIP against the supervised ViT through its aligner; bad input refused.
    void projectAndCompare() {
        const QString clip = q(source("models/shapes-clip")), vit = q(source("models/shapes-vit"));
        const QString world = path("project-world"), cache = path("project-cache"), vitCache = path("project-vit");
        QCOMPARE(cli({"shapes", "generate", "--out", world, "--count", "40", "--seed", "12"}).code, 0);
        QCOMPARE(cli({"cache", "build", "--model", clip, "--images", world + "/images", "--out", cache}).code, 0);
        QCOMPARE(cli({"cache", "build", "--model", vit, "--images", world + "/images", "--out", vitCache}).code, 0);
        for (const char* method : {"pca", "umap", "tsne"}) {
            const Run r = cli({"project", "--cache", cache, "--method", method, "--seed", "3", "--out", path("layout.npy")});
            QVERIFY2(r.code == 0, qPrintable(r.err));
            const at::Tensor y = readNpyTensor(path("layout.npy").toStdString());
            QCOMPARE(y.scalar_type(), at::kFloat);
            QCOMPARE(y.sizes().vec(), (std::vector<int64_t>{40, 2}));
            QVERIFY(at::isfinite(y).all().item<bool>());
        }
        Run r = cli({"project", "--cache", cache, "--method", "umap", "--points", "heads", "--out", path("heads.npy")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QCOMPARE(readNpyTensor(path("heads.npy").toStdString()).sizes().vec(), (std::vector<int64_t>{16, 2}));
        r = cli({"project", "--cache", cache, "--method", "pca", "--points", "head-directions", "--directions", "2", "--out", path("dirs.npy")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QCOMPARE(readNpyTensor(path("dirs.npy").toStdString()).sizes().vec(), (std::vector<int64_t>{32, 2}));
        r = cli({"project", "--cache", cache, "--method", "text-axes", "--component", "3.1,3.2", "--text-x", "a red object", "a blue object",
                 "--text-y", "a circle", "a square", "--out", path("axes.npy")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        // x = the retrieval score of text A minus that of text B through the same heads, for every image.
        std::map<int64_t, double> scores[2];
        for (int t = 0; t < 2; ++t) {
            r = cli({"retrieve", "--cache", cache, "--text", t == 0 ? "a red object" : "a blue object", "--heads", "3.1,3.2", "--top", "40",
                     "--out", path("axes-ret.json")});
            QVERIFY2(r.code == 0, qPrintable(r.err));
            const auto hits = nlohmann::json::parse(readFileText(path("axes-ret.json").toStdString()));
            for (const auto& hit : hits["restricted"]) scores[t][hit["row"].get<int64_t>()] = hit["score"].get<double>();
        }
        const at::Tensor axes = readNpyTensor(path("axes.npy").toStdString());
        QCOMPARE(scores[0].size(), std::size_t(40));
        for (int64_t row = 0; row < 40; ++row)
            QVERIFY(std::abs(axes[row][0].item<double>() - (scores[0][row] - scores[1][row])) < 1e-4);
        // The ViT's cache through its aligner (found beside the model), projected in CLIP space.
        r = cli({"project", "--cache", vitCache, "--method", "pca", "--component", "mlp.3", "--out", path("vit.npy")});
        QVERIFY2(r.code == 0, qPrintable(r.err));

        r = cli({"compare", "--model", clip, "--model", clip, "--cache-a", cache, "--cache-b", cache, "--out", path("self")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const at::Tensor cka = readNpyTensor(path("self/cka.npy").toStdString());
        QCOMPARE(cka.sizes().vec(), (std::vector<int64_t>{16, 16}));
        const QStringList lines = QString::fromStdString(readFileText(path("self/assignment.txt").toStdString())).trimmed().split('\n');
        QCOMPARE(lines.size(), 16);
        for (const QString& line : lines) {
            const QStringList f = line.split(' ');
            QCOMPARE(f.size(), 3);
            QCOMPARE(f[0], f[1]);
            QVERIFY(std::abs(f[2].toDouble() - 1) < 1e-4);
        }
        QCOMPARE(QString::fromStdString(readFileText(path("self/heads_a.txt").toStdString())).split('\n')[5], QString("1.1"));
        r = cli({"compare", "--model", clip, "--model", vit, "--cache-a", cache, "--cache-b", vitCache, "--out", path("clip-vit")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const auto summary = nlohmann::json::parse(readFileText(path("clip-vit/summary.json").toStdString()));
        QCOMPARE(summary["images"].get<int>(), 40);
        QVERIFY(summary["mean_assigned_cka"].get<double>() > 0 && summary["mean_assigned_cka"].get<double>() < 1);

        auto fails = [&](const QStringList& args, const QString& expected) {
            const Run bad = cli(args);
            QCOMPARE(bad.code, 2);
            QVERIFY2(bad.err.trimmed().count('\n') == 0 && bad.err.contains(expected), qPrintable(bad.err));
        };
        fails({"project", "--cache", cache, "--method", "mds", "--out", path("x.npy")}, "unknown layout method 'mds'");
        fails({"project", "--cache", cache, "--method", "text-axes", "--text-x", "a", "b", "--out", path("x.npy")}, "--text-y");
        fails({"project", "--cache", cache, "--method", "pca", "--component", "9.9", "--out", path("x.npy")}, "9.9");
        fails({"project", "--cache", cache, "--method", "pca", "--points", "tokens", "--out", path("x.npy")}, "--points");
        fails({"project", "--cache", cache, "--method", "pca", "--directions", "2", "--out", path("x.npy")}, "--directions");
        fails({"project", "--cache", cache, "--method", "pca", "--points", "head-directions", "--directions", "0", "--out", path("x.npy")},
              "--directions");
        fails({"project", "--cache", path("nowhere"), "--method", "pca", "--out", path("x.npy")}, "nowhere");
        QCOMPARE(cli({"shapes", "generate", "--out", path("project-world2"), "--count", "12", "--seed", "13"}).code, 0);
        QCOMPARE(cli({"cache", "build", "--model", clip, "--images", path("project-world2") + "/images", "--out", path("project-cache2")}).code, 0);
        fails({"project", "--cache", path("project-cache2"), "--method", "tsne", "--out", path("x.npy")}, "perplexity");
        fails({"compare", "--model", clip, "--model", clip, "--cache-a", cache, "--cache-b", path("project-cache2"), "--out", path("x")},
              "different images");
        fails({"compare", "--model", clip, "--cache-a", cache, "--cache-b", cache, "--out", path("x")}, "--model");
        fails({"compare", "--model", clip, "--model", clip, "--cache-a", cache, "--cache-b", vitCache, "--out", path("x")}, "project-vit");
    }

    // splice on the bundled CLIP: the output and a head, with means from images and from a cache
    // (the same images: the same output mean); weights [B, V] >= 0, cosine in (0, 1]; a vocabulary
    // word the model lacks and a wrong-size mean are one-line errors naming the file.
    void spliceWritesWeights() {
        const QString clip = q(source("models/shapes-clip")), world = path("sp-world"), vocab = q(source("resources/shapes/concepts.txt"));
        QCOMPARE(cli({"shapes", "generate", "--out", world, "--count", "12", "--seed", "3131"}).code, 0);
        QStringList images;
        for (const QString& f : QDir(world + "/images").entryList({"*.png"}, QDir::Files, QDir::Name)) images << world + "/images/" + f;
        QCOMPARE(images.size(), 12);
        Run r = cli(QStringList{"splice-mean", "--model", clip, "--out", path("sp-mean.npy"), "--image"} + images);
        QVERIFY2(r.code == 0, qPrintable(r.err));
        r = cli({"cache", "build", "--model", clip, "--images", world + "/images", "--out", path("sp-cache")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        r = cli({"splice-mean", "--cache", path("sp-cache"), "--out", path("sp-mean-cache.npy")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const at::Tensor mean = readNpyTensor(path("sp-mean.npy").toStdString());
        QCOMPARE(mean.sizes().vec(), std::vector<int64_t>{64});
        QVERIFY(maxAbsDiff(mean, readNpyTensor(path("sp-mean-cache.npy").toStdString())) < 1e-5);
        const QStringList three{images[0], images[1], images[2]};
        r = cli(QStringList{"splice", "--model", clip, "--vocab", vocab, "--image-mean", path("sp-mean.npy"), "--l1", "0.15", "--out",
                            path("sp-out"), "--image"} + three);
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QVERIFY2(r.out.contains("image 0: cosine"), qPrintable(r.out));
        const int64_t concepts = static_cast<int64_t>(readTextList(vocab.toStdString()).size());
        for (const QString& dir : {path("sp-out"), path("sp-head")}) {
            if (dir == path("sp-head")) {
                r = cli(QStringList{"splice-mean", "--model", clip, "--component", "3.1", "--out", path("sp-mean-head.npy"), "--image"} + images);
                QVERIFY2(r.code == 0, qPrintable(r.err));
                r = cli(QStringList{"splice", "--model", clip, "--vocab", vocab, "--image-mean", path("sp-mean-head.npy"), "--component", "3.1",
                                    "--out", dir, "--image"} + three);
                QVERIFY2(r.code == 0, qPrintable(r.err));
            }
            const at::Tensor w = readNpyTensor((dir + "/weights.npy").toStdString());
            const at::Tensor c = readNpyTensor((dir + "/cosine.npy").toStdString());
            QCOMPARE(w.sizes().vec(), (std::vector<int64_t>{3, concepts}));
            QCOMPARE(c.sizes().vec(), std::vector<int64_t>{3});
            QCOMPARE(w.scalar_type(), at::kFloat);
            QVERIFY(w.min().item<double>() >= 0.0 && w.max().item<double>() > 0.0);
            QVERIFY(c.min().item<double>() > 0.0 && c.max().item<double>() <= 1.0 + 1e-6);
        }
        writeFileAtomic(path("sp-bad-vocab.txt").toStdString(), "circle\nzebra\n");
        r = cli(QStringList{"splice", "--model", clip, "--vocab", path("sp-bad-vocab.txt"), "--image-mean", path("sp-mean.npy"), "--out",
                            path("sp-x"), "--image", images[0]});
        QVERIFY2(r.code == 2 && r.err.trimmed().count('\n') == 0 && r.err.contains(path("sp-bad-vocab.txt")), qPrintable(r.err));
        writeNpyTensor(path("sp-mean-7.npy").toStdString(), at::zeros({7}));
        r = cli(QStringList{"splice", "--model", clip, "--vocab", vocab, "--image-mean", path("sp-mean-7.npy"), "--out", path("sp-x"), "--image",
                            images[0]});
        QVERIFY2(r.code == 2 && r.err.trimmed().count('\n') == 0 && r.err.contains(path("sp-mean-7.npy")), qPrintable(r.err));
    }

    // sae attribute: the arrays and their contract (rows by activation, -1 / zero padding, every
    // row summing to its pre-activation, sae_bias last, --maps summing to the heads' columns); an SAE whose width is not the model's is
    // refused in one line naming the file.
    void saeAttributeWritesArrays() {
        at::manual_seed(41);
        writeNpyTensor(path("sae-pixels.npy").toStdString(), at::randn({3, 3, 64, 64}));
        const QString model = q(source("models/shapes-clip")), out = path("sae-attr");
        const Run r = cli({"sae", "attribute", "--sae", q(source("tests/data/sae/prisma-output")), "--model", model, "--pixels",
                           path("sae-pixels.npy"), "--batch", "2", "--maps", "--out", out});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const at::Tensor latents = readNpyTensor((out + "/latents.npy").toStdString());
        const at::Tensor pre = readNpyTensor((out + "/preacts.npy").toStdString());
        const at::Tensor attr = readNpyTensor((out + "/attribution.npy").toStdString());
        const at::Tensor active = readNpyTensor((out + "/active.npy").toStdString());
        const at::Tensor maps = readNpyTensor((out + "/maps.npy").toStdString());
        QCOMPARE(maps.sizes().vec(), (std::vector<int64_t>{3, active.size(1), 65}));
        QCOMPARE(latents.sizes().vec(), (std::vector<int64_t>{3, 128}));
        QCOMPARE(pre.sizes().vec(), (std::vector<int64_t>{3, 128}));
        QCOMPARE(active.scalar_type(), at::kLong);
        QCOMPARE(active.size(1), attr.size(1));
        QCOMPARE(active.size(1), int64_t(8));  // TopK 8: every image has at most 8
        std::ifstream names((out + "/components.txt").toStdString());
        std::vector<std::string> comps;
        for (std::string line; std::getline(names, line);) comps.push_back(line);
        QCOMPARE(int64_t(comps.size()), attr.size(2));
        QCOMPARE(comps.front(), std::string("embed"));
        QCOMPARE(comps.back(), std::string("sae_bias"));
        for (int64_t b = 0; b < 3; ++b) {
            const int64_t count = (latents[b] != 0).sum().item<int64_t>();
            for (int64_t r2 = 0; r2 < active.size(1); ++r2) {
                const int64_t j = active[b][r2].item<int64_t>();
                if (r2 >= count) {
                    QCOMPARE(j, int64_t(-1));
                    QCOMPARE(attr[b][r2].abs().sum().item<double>(), 0.0);
                    continue;
                }
                QVERIFY(latents[b][j].item<float>() > 0);
                QVERIFY(std::abs(attr[b][r2].to(at::kDouble).sum().item<double>() - pre[b][j].item<double>()) < 1e-4);
                double heads = 0;  // the head columns ("L.H") are what the token map splits
                for (std::size_t c = 0; c < comps.size(); ++c)
                    if (std::isdigit(static_cast<unsigned char>(comps[c][0])))
                        heads += attr[b][r2][static_cast<int64_t>(c)].item<double>();
                QVERIFY(std::abs(maps[b][r2].sum().item<double>() - heads) < 1e-4);
            }
        }
        const Run bad = cli({"sae", "attribute", "--sae", q(source("tests/data/sae/prisma-output")), "--model",
                             q(source("models/shapes-vit")), "--pixels", path("sae-pixels.npy"), "--out", path("sae-bad")});
        QCOMPARE(bad.code, 2);
        QVERIFY2(bad.err.trimmed().count('\n') == 0 && bad.err.contains("prisma-output"), qPrintable(bad.err));
    }

    void demoRunsWithoutDownloads() {
        const Run r = cli({"demo", "--random", "--out", path("demo")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QVERIFY(r.out.contains("max |sum of terms - embedding|"));
        QVERIFY(QFileInfo(path("demo/heatmap_last_layer.png")).size() > 1000);
        // With the bundled shapes model (committed under models/), the default demo uses it.
        if (QFileInfo::exists(QString(VITSCOPE_SOURCE_DIR) + "/models/shapes-clip/open_clip_model.safetensors")) {
            const Run shapes = cli({"demo", "--out", path("demo-shapes")});
            QVERIFY2(shapes.code == 0, qPrintable(shapes.err));
            QVERIFY(shapes.out.contains("zero-shot accuracy on 500 held-out scenes"));
            QVERIFY(QFileInfo(path("demo-shapes/heatmap.png")).size() > 1000);
        }
    }
    // sae train on a cache of 40 shapes-world scenes: a vitscope SAE file with the settings in its
    // metadata, the purity figures from the world's labels.csv, the same through sae purity and at
    // a layer (computed with the cache's model); bad --at / --kind / --k refused in one line.
    void saeTrainWritesAFile() {
        const QString clip = QString(VITSCOPE_SOURCE_DIR) + "/models/shapes-clip";
        QCOMPARE(cli({"shapes", "generate", "--out", path("sae-world"), "--count", "40", "--seed", "5"}).code, 0);
        Run r = cli({"cache", "build", "--model", clip, "--images", path("sae-world") + "/images", "--out", path("sae-cache")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const QStringList base = {"sae", "train", "--cache", path("sae-cache"), "--width", "32", "--epochs", "3", "--batch", "8"};
        r = cli(base + QStringList{"--kind", "topk", "--k", "4", "--out", path("sae.safetensors"), "--report", path("sae.json")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QVERIFY2(r.out.contains("variance explained") && r.out.contains("purity >= 0.90") && r.out.contains("color"), qPrintable(r.out));
        std::map<std::string, std::string> meta;
        const StateDict t = readSafetensorsFloat(path("sae.safetensors").toStdString(), &meta);
        QCOMPARE(t.at("W_enc").sizes(), (at::IntArrayRef{64, 32}));
        QCOMPARE(t.at("W_dec").sizes(), (at::IntArrayRef{32, 64}));
        QCOMPARE(meta.at("format"), std::string("vitscope-sae"));
        QCOMPARE(meta.at("site"), std::string("output"));
        QCOMPARE(meta.at("k"), std::string("4"));
        QCOMPARE(meta.at("objective"), std::string("topk"));
        QCOMPARE(meta.at("steps"), std::string("15"));  // 3 epochs x 40 / 8
        const auto report = nlohmann::json::parse(readFileText(path("sae.json").toStdString()));
        QCOMPARE(report["purity"]["latents"].get<int>(), 32);
        QCOMPARE(report["purity"]["per_latent"].size(), std::size_t(32));
        const Run purity = cli({"sae", "purity", "--sae", path("sae.safetensors"), "--cache", path("sae-cache")});
        QVERIFY2(purity.code == 0 && purity.out == r.out.mid(r.out.indexOf("reconstruction:")), qPrintable(purity.out + purity.err));
        // Any layout loadSae reads: a ViT-Prisma folder at the output, a SAELens one at layer:1 (the cache's model).
        for (const char* other : {"prisma-output", "saelens-layer1"}) {
            const Run p = cli({"sae", "purity", "--sae", q(source(std::string("tests/data/sae/") + other)), "--cache",
                               path("sae-cache"), "--report", path("other.json")});
            QVERIFY2(p.code == 0 && p.out.contains("purity >= 0.90") && p.out.contains("variance explained"),
                     qPrintable(p.out + p.err));
            const auto j = nlohmann::json::parse(readFileText(path("other.json").toStdString()));
            QCOMPARE(j["purity"]["latents"].get<int>(), other == std::string("prisma-output") ? 128 : 48);  // d_sae
        }
        r = cli(base + QStringList{"--kind", "matryoshka", "--k", "4", "--at", "layer:1", "--out", path("sae-l1.safetensors")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QCOMPARE(loadSae(path("sae-l1.safetensors").toStdString()).dIn(), int64_t(128));
        for (const QStringList& bad : {QStringList{"--at", "layer:x"}, QStringList{"--kind", "relu"}, QStringList{"--k", "33"}}) {
            r = cli(base + bad + QStringList{"--out", path("bad.safetensors")});
            QCOMPARE(r.code, 2);
            QVERIFY2(r.err.contains(bad.front()) && r.err.trimmed().count('\n') == 0, qPrintable(r.err));
        }
        r = cli({"sae", "attribute"});
        QVERIFY2(r.code == 2 && r.err.trimmed().count('\n') == 0, qPrintable(r.err));
    }
};

QTEST_GUILESS_MAIN(TestCli)
#include "test_cli.moc"
