// vitscope-screenshots: drives the real main window through its main views and grabs each one
// to a PNG (docs/take-screenshots.sh runs it under Xvfb). Not installed.
#include "ablation_panel.h"
#include "classroom.h"
#include "drive.h"
#include "gallery.h"
#include "image_canvas.h"
#include "ledger_view.h"
#include "main_window.h"

#include <QApplication>
#include <QDir>
#include <QDockWidget>
#include <QEventLoop>
#include <QTimer>

#include <cstdio>
#include <functional>

using namespace vitscope::ui;

namespace {

template <typename Signal>
bool waitFor(MainWindow& w, Signal signal, int ms = 120000) {
    return waitForSignal(&w, signal, ms);
}

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
    bool ok = waitFor(w, &MainWindow::descriptionsReady);
    // main.png: the opening view a newcomer sees (a scene, its text, the strongest head, the gallery).
    settle(2500);
    ok = ok && shoot(w, out + "/main.png");
    w.openImage(o.dataDir + "/shapes-world/images/000003.png");
    ok = ok && waitFor(w, &MainWindow::imageReady);
    w.grid()->setSelection({HeadId{3, 1}, HeadId{1, 1}, HeadId{2, 1}});
    emit w.grid()->headActivated(HeadId{3, 1});
    ok = ok && waitFor(w, &MainWindow::headPanelReady);
    w.setText("a red object");
    ok = ok && waitFor(w, &MainWindow::ledgerReady);
    settle(1500);  // thumbnails
    raise(w, "ledgerDock");
    ok = ok && shoot(w, out + "/ledger.png");
    w.runRetrieval("a blue object");
    ok = ok && waitFor(w, &MainWindow::retrievalReady);
    settle(1500);
    ok = ok && shoot(w, out + "/gallery.png");
    w.exportTextFigure({"a red object", "a blue object", "a circle", "a gray background"}, out + "/figure.png", 150);
    ok = ok && waitFor(w, &MainWindow::figureReady);
    w.exportPanelFigure({"a blue object", "a triangle"}, {HeadId{3, 1}, HeadId{2, 1}, HeadId{1, 1}}, out + "/figure-heads.png", 150, true);
    ok = ok && waitFor(w, &MainWindow::figureReady);
    w.setClassroomMode(true);
    w.classroom()->setStep(3);
    ok = ok && waitFor(w, &MainWindow::heatmapReady);
    ok = ok && shoot(w, out + "/classroom.png");
    w.setClassroomMode(false);
    w.loadSpuriousDemo();
    ok = ok && waitFor(w, &MainWindow::ablationReady, 300000);
    emit w.ablationPanel()->discoverRequested(6);
    ok = ok && waitFor(w, &MainWindow::ablationReady);
    settle(500);
    ok = ok && shoot(w, out + "/ablation.png");
    return ok ? 0 : 1;
}
