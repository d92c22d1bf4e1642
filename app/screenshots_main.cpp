// vitscope-screenshots: drives the real main window through its main views and grabs each one
// to a PNG (docs/take-screenshots.sh runs it under Xvfb). Not installed.
#include "ablation_panel.h"
#include "classroom_mode.h"
#include "export_controller.h"
#include "classroom.h"
#include "drive.h"
#include "gallery.h"
#include "image_canvas.h"
#include "ledger_view.h"
#include "main_window.h"

#include <QApplication>
#include <QDir>
#include <QFileInfo>
#include <QDockWidget>
#include <QEventLoop>
#include <QTimer>

#include <cstdio>
#include <functional>

using namespace vitscope::ui;

namespace {

bool shoot(QWidget& w, const QString& path) {
    settle(400);
    const bool ok = w.grab().save(path);
    std::fprintf(stderr, "%s %s\n", ok ? "wrote" : "cannot write", qPrintable(path));
    return ok;
}

void raise(MainWindow& w, const char* dock) {
    if (auto* d = w.findChild<QDockWidget*>(dock)) d->raise();
}

}  // namespace

int main(int argc, char** argv) {
    QApplication app(argc, argv);
    QApplication::setOrganizationName("vitscope-screenshots");
    QApplication::setApplicationName("vitscope-screenshots");
    if (argc < 3) {
        std::fprintf(stderr, "usage: vitscope-screenshots OUT_DIR DATA_DIR\n");
        return 2;
    }
    const QString out = argv[1];
    QDir().mkpath(out);
    StartOptions o;
    o.dataDir = argv[2];
    o.restoreSettings = false;
    o.device = "cpu";
    MainWindow w(o);
    w.resize(1500, 950);
    w.show();
    Session& s = w.session();
    const State& st = s.state();
    const int wait = 120000;
    bool ok = waitUntil(s, [&] { return !st.descriptions.empty() && !st.map.empty() && !st.focus.topImages.empty(); }, wait);
    // main.png: the opening view a newcomer sees (a scene, its text, the strongest head, the gallery).
    settle(2500);
    ok = ok && shoot(w, out + "/main.png");
    const QString image = o.dataDir + "/shapes-world/images/000003.png";
    s.openImage(image);
    ok = ok && waitUntil(s, [&] { return st.imagePath() == image; }, wait);
    s.select({HeadId{3, 1}, HeadId{1, 1}, HeadId{2, 1}});
    s.focusHead(HeadId{3, 1});
    ok = ok && waitUntil(s, [&] { return !st.focus.topImages.empty(); }, wait);
    s.setText("a red object");
    ok = ok && waitUntil(s, [&] { return st.ledger.text == "a red object" && !st.map.empty() && st.map.maps.front().text == "a red object"; }, wait);
    settle(1500);  // thumbnails
    raise(w, "ledgerDock");
    ok = ok && shoot(w, out + "/ledger.png");
    s.retrieveText("a blue object");
    ok = ok && waitUntil(s, [&] { return st.retrieval.result.query == "a blue object"; }, wait);
    settle(1500);
    ok = ok && shoot(w, out + "/gallery.png");
    // projector.png: the dataset's UMAP, coloured by the text's score.
    s.project("umap", "whole", {});
    ok = ok && waitUntil(s, [&] { return !st.projection.result.x.empty(); }, 300000);
    raise(w, "projectorDock");
    settle(1000);
    ok = ok && shoot(w, out + "/projector.png");
    // projector-picked.png: coloured by labels.csv's colour column, the red scenes picked (ringed),
    // the grid showing which heads set them apart.
    s.colourProjectionBy("color");
    ok = ok && waitUntil(s, [&] { return st.projection.result.labels.size() == st.projection.result.x.size() && !st.projection.computing; }, wait);
    QVector<int> red;
    for (std::size_t i = 0; ok && i < st.projection.result.labels.size(); ++i)
        if (st.projection.result.labels[i] == "red") red << int(i);
    s.pickProjected(red);
    ok = ok && !red.isEmpty() && waitUntil(s, [&] { return st.projection.separationOf == red.size(); }, wait);
    settle(1000);
    ok = ok && shoot(w, out + "/projector-picked.png");
    s.pickProjected({});
    s.setMetric(GridMetric::DirectEffect);
    raise(w, "galleryDock");
    // neurons.png: an MLP clicked, its neurons by second-order effect on the scene, scored for the text.
    s.focusMlp(1);
    ok = ok && waitUntil(s, [&] { return st.focus.neurons.layer == 1 && !st.focus.neurons.rows.empty(); }, wait);
    raise(w, "headDock");
    settle(1500);
    ok = ok && shoot(w, out + "/neurons.png");
    // neuron.png: its strongest neuron clicked: its activation map, its texts and top images over the dataset.
    if (ok) s.focusNeuron(st.focus.neurons.rows.front().neuron);
    ok = ok && waitUntil(s, [&] { return st.focus.detail.neuron >= 0 && !st.map.empty() && st.map.maps.front().method == "neuron"; }, 300000);
    settle(1500);
    ok = ok && shoot(w, out + "/neuron.png");
    s.focusHead(HeadId{3, 1});
    // registers.png: the map beside the same map of the test-time-register model.
    s.setRegistersBeside(true);
    ok = ok && waitUntil(s, [&] { return st.map.withRegisters && st.map.maps.size() == 2; }, 300000);
    settle(1000);
    ok = ok && shoot(w, out + "/registers.png");
    s.setRegistersBeside(false);
    ok = ok && waitUntil(s, [&] { return !st.map.withRegisters; }, wait);
    // concepts.png: the bundled SAE's latents on the scene, the strongest traced to heads and tokens.
    s.openSae(QFileInfo(QString::fromStdString(st.model.spec)).absoluteFilePath() + "/sae/topk-output.safetensors");
    ok = ok && waitUntil(s, [&] { return st.concepts.latents && !st.concepts.latents->active.empty() && !st.concepts.computing; }, wait);
    if (ok) s.chooseLatent(st.concepts.latents->active.front().latent);
    ok = ok && waitUntil(s, [&] { return st.concepts.detail && !st.map.empty() && st.map.maps.front().method == "sae-latent"; }, wait);
    raise(w, "conceptsDock");
    settle(1500);
    ok = ok && shoot(w, out + "/concepts.png");
    raise(w, "headDock");
    s.setText("a red object");
    w.exporter().exportPanelFigure({"a red object", "a blue object", "a circle", "a gray background"}, {}, out + "/figure.png", 150);
    ok = ok && waitForSignal(&w.exporter(), &ExportController::figureWritten, wait);
    w.exporter().exportPanelFigure({"a blue object", "a triangle"}, {HeadId{3, 1}, HeadId{2, 1}, HeadId{1, 1}}, out + "/figure-heads.png", 150, true);
    ok = ok && waitForSignal(&w.exporter(), &ExportController::figureWritten, wait);
    w.classroomMode().setOn(true);
    w.views().classroom->setStep(3);
    settle(1500);
    ok = ok && shoot(w, out + "/classroom.png");
    w.classroomMode().setOn(false);
    s.loadSpuriousDemo();
    ok = ok && waitUntil(s, [&] { return st.ablation.taskSet && st.model.name == "shapes-clip-spurious"; }, 300000);
    emit w.views().ablation->discoverRequested(6);
    ok = ok && waitUntil(s, [&] { return !st.ablation.ablated.isEmpty() && int(st.ablation.outcome.ablated.size()) == st.ablation.ablated.size(); }, wait);
    settle(500);
    ok = ok && shoot(w, out + "/ablation.png");
    return ok ? 0 : 1;
}
