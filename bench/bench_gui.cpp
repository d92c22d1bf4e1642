// GUI latency benchmark (prints its figures; run by bench/run-bench-gui.sh under Xvfb or
// offscreen): head click -> head panel updated with a cached dataset; dropped image -> heatmap
// shown, against the model's plain forward time; the longest GUI-thread stall while a dataset
// cache builds. On the bundled shapes-clip (a generated world of --images scenes) and on a
// random CLIP ViT-B/16 (its tokenizer taken from ../shared/oracle when present).
#include <ATen/ATen.h>

#include "image/preprocess.h"
#include "model/export.h"
#include "model/forward.h"
#include "model/loader.h"
#include "model/random_weights.h"
#include "runtime.h"

#include "drive.h"
#include "head_grid.h"
#include "head_panel.h"
#include "image_canvas.h"
#include "main_window.h"
#include "projector.h"
#include "session.h"
#include "thumbnails.h"

#include <qcustomplot.h>

#include <opencv2/imgcodecs.hpp>

#include <QApplication>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QMimeData>
#include <QTemporaryDir>
#include <QTest>
#include <QTimer>
#include <QUrl>

#include <algorithm>
#include <chrono>
#include <random>
#include <cstdio>
#include <filesystem>
#include <vector>

namespace fs = std::filesystem;
using namespace vitscope;
using namespace vitscope::ui;

namespace {


struct Stats {
    double median = 0, p90 = 0, max = 0;
};

Stats stats(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    if (v.empty()) return {};
    return {v[v.size() / 2], v[std::min(v.size() - 1, v.size() * 9 / 10)], v.back()};
}

// Plain forward of one preprocessed image, median of `runs` (ms).
double forwardMs(const Model& model, const std::string& image, int runs) {
    at::NoGradGuard noGrad;
    const at::Tensor pixels = loadAndPreprocess({image}, model.preprocess);
    encodeImages(model, pixels);  // warm-up
    std::vector<double> t;
    for (int i = 0; i < runs; ++i) {
        const auto a = std::chrono::steady_clock::now();
        encodeImages(model, pixels);
        t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
    }
    return stats(t).median;
}

void measure(const QString& label, const QString& modelDir, const QString& datasetDir, const QStringList& dropImages, const QString& dataDir,
             int clicks, const QString& stallDataset) {
    StartOptions o;
    o.model = modelDir;
    o.dataset = datasetDir;
    o.dataDir = dataDir;
    o.device = "cpu";
    o.restoreSettings = false;
    o.text = "a red object";
    MainWindow w(o);
    w.resize(1400, 900);
    w.show();
    QElapsedTimer setup;
    setup.start();
    Session& session = w.session();
    const State& st = session.state();
    if (!waitUntil(session, [&] { return !st.descriptions.empty(); }, 600000)) {
        std::printf("%s: the dataset was not ready: %s\n", qPrintable(label), qPrintable(st.message.text));
        return;
    }
    std::printf("\n== %s: dataset cached and heads described in %.1f s\n", qPrintable(label), setup.elapsed() / 1000.0);
    // Head click -> panel updated (descriptions + top images from the cache).
    std::vector<double> click;
    HeadGrid* grid = w.views().grid;
    for (int i = 0; i < clicks; ++i) {
        const int l = (i * 7) % grid->layers(), h = (i * 3) % grid->heads();
        QElapsedTimer t;
        t.start();
        QTest::mouseClick(grid, Qt::LeftButton, Qt::NoModifier, grid->cellRect(l, h).center());
        // The panel is updated when the clicked head's top images are in.
        if (!waitUntil(session, [&] { return st.focus.head.layer == l && st.focus.head.head == h && !st.focus.topImages.empty(); }, 10000)) break;
        click.push_back(t.nsecsElapsed() / 1e6);
    }
    const Stats c = stats(click);
    std::printf("head click -> panel updated (%zu clicks): median %.1f ms, p90 %.1f ms, max %.1f ms\n", click.size(), c.median, c.p90, c.max);
    // Dropped image -> heatmap shown.
    std::vector<double> drop;
    std::printf("dropping %d images\n", int(dropImages.size()));
    for (const QString& image : dropImages) {
        QElapsedTimer t;
        t.start();
        dropFile(w.views().canvas, image);
        if (!waitUntil(session, [&] { return st.imagePath() == image && !st.map.empty(); }, 60000)) {
            std::printf("no heatmap for %s after %.0f ms: %s\n", qPrintable(image), t.nsecsElapsed() / 1e6, qPrintable(st.message.text));
            break;
        }
        drop.push_back(t.nsecsElapsed() / 1e6);
    }
    const Stats d = stats(drop);
    const Model model = loadModel(modelDir.toStdString());
    const double fwd = forwardMs(model, dropImages.front().toStdString(), 10);
    std::printf("dropped image -> heatmap shown (%zu images): median %.1f ms, max %.1f ms; plain forward %.1f ms: %.2fx\n", drop.size(), d.median,
                d.max, fwd, d.median / fwd);
    // GUI-thread stalls while a cache builds: the longest gap between 2 ms timer ticks.
    if (!stallDataset.isEmpty()) {
        std::vector<double> gaps;
        QElapsedTimer tick;
        tick.start();
        QTimer timer;
        timer.setInterval(2);
        QObject::connect(&timer, &QTimer::timeout, [&] {
            gaps.push_back(tick.nsecsElapsed() / 1e6);
            tick.restart();
        });
        timer.start();
        QElapsedTimer build;
        build.start();
        session.openDataset(stallDataset);
        const bool ok = waitUntil(session, [&] { return st.dataset.folder == stallDataset; }, 600000);
        timer.stop();
        const Stats g = stats(gaps);
        std::printf("GUI thread during a cache build (%s, %.1f s, %zu ticks): longest gap %.1f ms, p90 %.1f ms\n", ok ? "done" : "NOT DONE",
                    build.elapsed() / 1000.0, gaps.size(), g.max, g.p90);
    }
}

}  // namespace

// One interaction's frames: `step` changes the view, then the plot is drawn at once (ms each).
template <class Step>
Stats frames(QCustomPlot* plot, int count, Step step) {
    std::vector<double> t;
    for (int i = 0; i < count; ++i) {
        QElapsedTimer timer;
        timer.start();
        step(i);
        plot->replot(QCustomPlot::rpImmediateRefresh);
        QCoreApplication::processEvents();
        t.push_back(timer.nsecsElapsed() / 1e6);
    }
    return stats(t);
}

// The projector with `points` images (seeded blobs), coloured by a score (9 bins) and by a labels
// column (10 values + other): the first draw, then pan, zoom, hover and lasso frame times.
void measureProjector(int points) {
    Thumbnails thumbs(64);
    Projector p(&thumbs);
    p.resize(1200, 700);
    p.show();
    State s;
    ProjectionResult& r = s.projection.result;
    r.request.method = "umap";
    std::mt19937 rng(7);
    std::normal_distribution<float> g(0.f, 1.f);
    for (int i = 0; i < points; ++i) {
        const int blob = i % 12;
        r.x.push_back(3.f * float(blob % 4) + g(rng));
        r.y.push_back(3.f * float(blob / 4) + g(rng));
        r.paths.push_back("image" + std::to_string(i) + ".png");
        r.color.push_back(g(rng));
    }
    for (const char* kind : {"score", "labels"}) {
        if (std::string(kind) == "labels") {
            r.color.clear();
            r.request.colorColumn = "value";
            for (int i = 0; i < points; ++i) r.labels.push_back("v" + std::to_string(i % 14));
        }
        QElapsedTimer first;
        first.start();
        p.render(s, Aspect::Projection);
        QCoreApplication::processEvents();
        const double drawMs = first.nsecsElapsed() / 1e6;
        QCustomPlot* plot = p.plot();
        const Stats pan = frames(plot, 60, [plot](int i) { plot->xAxis->moveRange((i % 2 ? -1 : 1) * 0.05 * plot->xAxis->range().size()); });
        const Stats zoom = frames(plot, 60, [plot](int i) { plot->xAxis->scaleRange(i % 2 ? 1.05 : 1 / 1.05); });
        const QRect area = plot->axisRect()->rect();
        const Stats hover = frames(plot, 60, [plot, area](int i) {
            const QPointF at(area.left() + (i * 37) % area.width(), area.top() + (i * 53) % area.height());
            QMouseEvent move(QEvent::MouseMove, at, plot->mapToGlobal(at), Qt::NoButton, Qt::NoButton, Qt::NoModifier);
            QCoreApplication::sendEvent(plot, &move);
        });
        p.findChild<QPushButton*>("projectorSelect")->setChecked(true);
        const QPointF c = area.center();
        QTest::mousePress(plot, Qt::LeftButton, {}, c.toPoint());
        const Stats lasso = frames(plot, 60, [plot, c](int i) {
            const double a = 6.283 * i / 60, rad = 150;
            const QPointF at = c + QPointF(rad * std::cos(a), rad * std::sin(a));
            QMouseEvent move(QEvent::MouseMove, at, plot->mapToGlobal(at), Qt::NoButton, Qt::LeftButton, Qt::NoModifier);
            QCoreApplication::sendEvent(plot, &move);
        });
        QElapsedTimer pick;
        pick.start();
        QTest::mouseRelease(plot, Qt::LeftButton, {}, c.toPoint());
        const double pickMs = pick.nsecsElapsed() / 1e6;
        p.findChild<QPushButton*>("projectorSelect")->setChecked(false);
        if (qEnvironmentVariableIsSet("VITSCOPE_BENCH_SHOTS"))  // what was timed, to look at
            p.grab().save(qEnvironmentVariable("VITSCOPE_BENCH_SHOTS") + QString("/projector-%1.png").arg(kind));
        std::printf("projector, %d points coloured by %s: first draw %.0f ms; frame median / p90 (fps at the median): pan %.1f / %.1f ms "
                    "(%.0f), zoom %.1f / %.1f (%.0f), hover %.1f / %.1f (%.0f), lasso %.1f / %.1f (%.0f); lasso pick %.0f ms\n",
                    points, kind, drawMs, pan.median, pan.p90, 1000 / pan.median, zoom.median, zoom.p90, 1000 / zoom.median, hover.median,
                    hover.p90, 1000 / hover.median, lasso.median, lasso.p90, 1000 / lasso.median, pickMs);
    }
}

int main(int argc, char** argv) {
    QApplication app(argc, argv);
    QApplication::setOrganizationName("vitscope-bench");
    QApplication::setApplicationName("vitscope-bench");
    configureRuntime();
    int images = 10000;
    bool vitb = true;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--images" && i + 1 < argc) images = std::atoi(argv[++i]);
        if (a == "--skip-vitb") vitb = false;
        if (a == "--projector" && i + 1 < argc) {  // the projector's frame times only
            measureProjector(std::atoi(argv[++i]));
            return 0;
        }
    }
    QTemporaryDir work;
    const QString dataDir = work.path() + "/data";
    const QString world = work.path() + "/world", world2 = work.path() + "/world2";
    ensureShapesWorld(world.toStdString(), images, 4242, "standard", {});
    ensureShapesWorld(world2.toStdString(), images, 4343, "standard", {});
    QStringList drops;
    for (int i = 0; i < 20; ++i) drops << QString("%1/images/%2.png").arg(world).arg(i, 6, 10, QChar('0'));
    std::printf("vitscope GUI latency benchmark (%d cores)\n", static_cast<int>(std::thread::hardware_concurrency()));
    measure(QString("shapes-clip, %1 cached scenes").arg(images), QString(VITSCOPE_SOURCE_DIR "/models/shapes-clip"), world + "/images", drops,
            dataDir, 32, world2 + "/images");
    const fs::path oracleTok = fs::path(VITSCOPE_ORACLE_DIR) / "clip-tiny" / "hf";
    if (vitb && fs::exists(oracleTok / "vocab.json")) {
        RandomVitSpec spec;
        spec.imageSize = 224, spec.patchSize = 16, spec.width = 768, spec.layers = 12, spec.heads = 12, spec.embedDim = 512;
        spec.textWidth = 64, spec.textLayers = 1, spec.seed = 1;
        const Model m = buildModel(randomVitStateDict(spec), {{"model_cfg", {{"text_cfg", {{"heads", 1}}}}}}, "random ViT-B/16");
        const std::string dir = (work.path() + "/vitb").toStdString();
        fs::create_directories(dir);
        saveOpenClipModel(m, dir);
        fs::copy_file(oracleTok / "vocab.json", fs::path(dir) / "vocab.json");
        fs::copy_file(oracleTok / "merges.txt", fs::path(dir) / "merges.txt");
        const std::string photos = (work.path() + "/photos").toStdString();
        fs::create_directories(photos);
        QStringList vdrops;
        for (int i = 0; i < 48; ++i) {
            cv::Mat img(256, 320, CV_8UC3);
            cv::randu(img, 0, 255);
            const std::string p = photos + "/img" + std::to_string(1000 + i) + ".png";
            cv::imwrite(p, img);
            if (i < 5) vdrops << QString::fromStdString(p);
        }
        measure("random CLIP ViT-B/16, 48 cached images", QString::fromStdString(dir), QString::fromStdString(photos), vdrops, dataDir, 24, {});
    } else {
        std::printf("\n(random ViT-B/16 skipped: %s)\n", vitb ? "no tokenizer in ../shared/oracle/clip-tiny/hf" : "--skip-vitb");
    }
    return 0;
}
