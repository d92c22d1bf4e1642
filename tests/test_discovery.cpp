// Model discovery: a file, a directory, the Hugging Face hub cache layout and ~/.cache/clip.
#include "error.h"
#include "model/loader.h"
#include "test_util.h"

#include <QtTest/QtTest>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;
using namespace vitscope;
using vitscope::test::oracle;

class TestDiscovery : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_home;
    std::string home() const { return m_home.path().toStdString(); }

private slots:
    void initTestCase() {
        QVERIFY(m_home.isValid());
        ::setenv("HOME", home().c_str(), 1);
        ::unsetenv("HF_HOME");
        ::unsetenv("HF_HUB_CACHE");
        // Hub cache: blobs are symlinked from snapshots/<rev>/, refs/main names the revision.
        const fs::path repo = fs::path(home()) / ".cache/huggingface/hub/models--acme--tiny-clip";
        fs::create_directories(repo / "snapshots/0123abcd");
        fs::create_directories(repo / "snapshots/old");
        fs::create_directories(repo / "refs");
        std::ofstream(repo / "refs/main") << "0123abcd";
        for (const char* f : {"config.json", "model.safetensors", "vocab.json", "merges.txt", "preprocessor_config.json"})
            fs::create_symlink(oracle(std::string("clip-tiny/hf/") + f), repo / "snapshots/0123abcd" / f);
        fs::create_directories(fs::path(home()) / ".cache/clip");
        fs::create_symlink(oracle("clip-tiny/openai/ViT-tiny.pt"), fs::path(home()) / ".cache/clip/ViT-T-32.pt");
    }

    void hubIdResolves() {
        const ModelFiles files = resolveModelFiles("acme/tiny-clip");
        QVERIFY(QString::fromStdString(files.weights).endsWith("snapshots/0123abcd/model.safetensors"));
        QVERIFY(QString::fromStdString(files.config).endsWith("config.json"));
        QVERIFY(QString::fromStdString(files.preprocessorConfig).endsWith("preprocessor_config.json"));
        QVERIFY(!files.tokenizer.empty());
        const Model model = loadModel("acme/tiny-clip");
        QCOMPARE(model.info.layout, std::string("hf"));
        QCOMPARE(model.vision.layers(), 3);
    }

    void hubRepoDirectoryResolves() {
        const Model model = loadModel(home() + "/.cache/huggingface/hub/models--acme--tiny-clip");
        QCOMPARE(model.info.layout, std::string("hf"));
    }

    void clipCacheNameResolves() {
        for (const char* name : {"ViT-T/32", "ViT-T-32", "ViT-T-32.pt"}) {
            const Model model = loadModel(name);
            QCOMPARE(model.info.layout, std::string("openai"));
            QCOMPARE(QString::fromStdString(model.tokenizerPath), QString());  // none beside it in the cache
        }
    }

    void discoveredListNamesBoth() {
        const std::vector<std::string> found = discoverModels();
        QVERIFY(std::find(found.begin(), found.end(), "acme/tiny-clip") != found.end());
        bool clip = false;
        for (const auto& f : found) clip = clip || QString::fromStdString(f).endsWith("ViT-T-32.pt");
        QVERIFY(clip);
    }

    void unknownNameFails() {
        QVERIFY_THROWS_EXCEPTION(IoError, resolveModelFiles("acme/missing"));
        QVERIFY_THROWS_EXCEPTION(IoError, resolveModelFiles("ViT-Z/99"));
    }
};

QTEST_GUILESS_MAIN(TestDiscovery)
#include "test_discovery.moc"
