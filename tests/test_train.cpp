// Shapes CLIP training smoke test: a few steps of a tiny model, the loss falls, an interrupted
// run resumes from its checkpoint, and the result loads through the engine like any CLIP.
#include "model/forward.h"
#include "model/loader.h"
#include "shapes/train_clip.h"
#include "shapes/zero_shot.h"
#include "text/text_tokenizer.h"
#include "test_util.h"

#include <QtTest/QtTest>

#include <filesystem>

using namespace vitscope;
using namespace vitscope::shapes;

namespace {

ClipTrainParams tinyParams(const std::string& out) {
    ClipTrainParams p;
    p.outDir = out;
    p.imageSize = 32;
    p.patchSize = 8;
    p.width = 32;
    p.layers = 1;
    p.heads = 2;
    p.embedDim = 16;
    p.textWidth = 32;
    p.textLayers = 1;
    p.textHeads = 1;
    p.batch = 32;
    p.steps = 40;
    p.warmupSteps = 5;
    p.learningRate = 3e-3;
    p.evalEvery = 0;
    p.checkpointEvery = 10;
    p.world.imageSize = 32;
    return p;
}

}  // namespace

class TestTrain : public QObject {
    Q_OBJECT

private slots:
    void lossFallsAndModelLoads() {
        QTemporaryDir dir;
        const ClipTrainParams p = tinyParams(dir.path().toStdString());
        std::vector<double> losses;
        std::atomic<bool> cancel{false};
        const ClipTrainResult r = trainShapesClip(p, cancel, [&](const TrainProgress& pr) { losses.push_back(pr.stepLoss); },
                                                  [](const std::string&) {});
        QCOMPARE(r.stepsRun, 40);
        QCOMPARE(int(losses.size()), 40);
        const double first = (losses[0] + losses[1] + losses[2] + losses[3] + losses[4]) / 5;
        const double last = (losses[35] + losses[36] + losses[37] + losses[38] + losses[39]) / 5;
        qInfo("loss %.3f -> %.3f", first, last);
        QVERIFY(last < first - 0.2);

        const Model model = loadModel(p.outDir);
        QCOMPARE(model.info.layout, std::string("open_clip"));
        QCOMPARE(model.text->contextLength, p.contextLength);
        QVERIFY(QString::fromStdString(model.tokenizerPath).endsWith("vocab.txt"));
        const auto tok = loadTokenizer(model.tokenizerPath);
        const ZeroShotResult zs = evaluateZeroShot(model, *tok, 100);
        QCOMPARE(zs.images, int64_t(100));
        WorldParams world;
        world.imageSize = 32;
        std::vector<Scene> scenes{generateScene(1, 0, world), generateScene(1, 1, world)};
        const Decomposition d = decomposeImages(model, scenesToPixels(scenes, model.preprocess), {true, Convention::Exact});
        QVERIFY(d.maxAbsError < 1e-4);
    }

    void interruptedRunResumes() {
        QTemporaryDir dir;
        ClipTrainParams p = tinyParams(dir.path().toStdString());
        p.steps = 20;
        std::atomic<bool> cancel{false};
        const ClipTrainResult first = trainShapesClip(
            p, cancel, [&](const TrainProgress& pr) { if (pr.step == 7) cancel.store(true); }, [](const std::string&) {});
        QVERIFY(first.cancelled);
        QCOMPARE(first.stepsRun, 7);
        QVERIFY(!std::filesystem::exists(p.outDir + "/open_clip_model.safetensors"));  // unfinished: only the checkpoint
        QVERIFY(std::filesystem::exists(p.outDir + "/checkpoint/state.json"));
        cancel.store(false);
        std::vector<int> steps;
        std::vector<std::string> logs;
        const ClipTrainResult second = trainShapesClip(
            p, cancel, [&](const TrainProgress& pr) { steps.push_back(pr.step); },
            [&](const std::string& line) { logs.push_back(line); });
        QVERIFY(!second.cancelled);
        QCOMPARE(second.stepsRun, 13);
        QCOMPARE(steps.front(), 8);
        QVERIFY(!logs.empty() && logs.front().find("resuming") != std::string::npos);
        QVERIFY(std::filesystem::exists(p.outDir + "/open_clip_model.safetensors"));
    }
};

QTEST_GUILESS_MAIN(TestTrain)
#include "test_train.moc"
