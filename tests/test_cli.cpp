// vitscope-cli's contract: command names, output files and layouts, exit codes.
#include "io/file_util.h"
#include "io/tensor_io.h"
#include "test_util.h"

#include <QtTest/QtTest>
#include <nlohmann/json.hpp>

using namespace vitscope;
using vitscope::test::maxAbsDiff;
using vitscope::test::oracle;

namespace {

struct Run {
    int code = -1;
    QString out, err;
};

Run cli(const QStringList& args) {
    QProcess p;
    p.start(VITSCOPE_CLI, args);
    Run r;
    if (!p.waitForFinished(120000)) return r;
    r.code = p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
    r.out = QString::fromUtf8(p.readAllStandardOutput());
    r.err = QString::fromUtf8(p.readAllStandardError());
    return r;
}

QString q(const std::string& s) { return QString::fromStdString(s); }

}  // namespace

class TestCli : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    QString path(const char* name) { return m_dir.path() + "/" + name; }

private slots:
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
};

QTEST_GUILESS_MAIN(TestCli)
#include "test_cli.moc"
