// vitscope: the desktop application. Starts on the bundled shapes-world model with no set-up.
#include "classroom.h"
#include "classroom_mode.h"
#include "main_window.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QTimer>

#include <memory>

#include <spdlog/spdlog.h>

#include <cstdio>

int main(int argc, char** argv) {
    QApplication app(argc, argv);
    QApplication::setOrganizationName("vitscope");
    QApplication::setApplicationName("vitscope");
    QApplication::setApplicationVersion("0.1.0");
    QApplication::setWindowIcon(QIcon::fromTheme("vitscope"));
    QCommandLineParser parser;
    parser.setApplicationDescription("vitscope: understand vision transformers through text");
    parser.addHelpOption();
    parser.addVersionOption();
    QCommandLineOption model("model", "Model file or folder (default: the bundled shapes-clip).", "spec");
    QCommandLineOption dataset("dataset", "Image folder to open as the dataset.", "folder");
    QCommandLineOption image("image", "Image to open.", "file");
    QCommandLineOption text("text", "Initial text.", "text");
    QCommandLineOption device("device", "cpu, cuda or auto.", "device", "auto");
    QCommandLineOption dataDir("data-dir", "Where caches and the generated worlds live.", "folder");
    QCommandLineOption fresh("no-restore", "Ignore the saved session.");
    QCommandLineOption screenshot("screenshot", "Grab the window to FILE once the dataset is described, then quit.", "file");
    QCommandLineOption classroom("classroom", "Start in classroom mode at step N (0-3), for screenshots.", "step");
    parser.addOptions({model, dataset, image, text, device, dataDir, fresh, screenshot, classroom});
    parser.process(app);

    vitscope::configureComputeRuntime();
    vitscope::ui::StartOptions o;
    o.model = parser.value(model);
    o.dataset = parser.value(dataset);
    o.image = parser.value(image);
    o.text = parser.value(text);
    o.device = parser.value(device);
    o.dataDir = parser.value(dataDir);
    o.restoreSettings = !parser.isSet(fresh);
    vitscope::ui::MainWindow w(o);
    w.show();
    if (parser.isSet(screenshot)) {
        const QString path = parser.value(screenshot);
        const int step = parser.isSet(classroom) ? parser.value(classroom).toInt() : -1;
        // Ready when heads are described and the current image has its heatmap and ledger.
        auto shoot = [&w, path, step] {
            if (step >= 0) {
                w.classroomMode().setOn(true);
                w.views().classroom->setStep(step);
            }
            QTimer::singleShot(1500, &w, [&w, path] {
                const bool ok = w.grab().save(path);
                std::fprintf(stderr, "%s %s\n", ok ? "wrote" : "cannot write", qPrintable(path));
                QApplication::exit(ok ? 0 : 1);
            });
        };
        // Ready when heads are described and the opening image has its map.
        auto ready = std::make_shared<bool>(false);
        QObject::connect(&w.session(), &vitscope::ui::Session::changed, &w, [&w, shoot, ready] {
            const vitscope::ui::State& s = w.session().state();
            if (*ready || s.descriptions.empty() || s.map.empty()) return;
            *ready = true;
            shoot();
        });
        QTimer::singleShot(120000, &w, [] {
            std::fprintf(stderr, "screenshot: the window was not ready within 120 s\n");
            QApplication::exit(1);
        });
    }
    return QApplication::exec();
}
