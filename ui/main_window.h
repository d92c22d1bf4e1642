#pragma once
// The main window builds the views and wires them: user actions go to the session (or the export
// controller), the session's changes come back to every view's render(). It holds no results.
#include "session.h"
#include "views.h"

#include <QMainWindow>

#include <memory>

namespace vitscope::ui {

class ClassroomMode;
class DockLayout;
class ExportController;
class Menus;
class PanelSink;
class StatusLine;

struct StartOptions {
    QString model;    // default: the last session's, else the bundled shapes-clip
    QString dataset;  // image folder; default: the bundled shapes world (generated on first start)
    QString image;    // opened after the model
    QString text;     // initial text
    QString dataDir;  // default: QStandardPaths::AppDataLocation
    QString device = "auto";
    bool restoreSettings = true;
};

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(const StartOptions& options, QWidget* parent = nullptr);
    ~MainWindow() override;

    Session& session() { return *m_session; }
    const State& state() const { return m_session->state(); }
    const Views& views() const { return m_views; }
    ExportController& exporter() { return *m_export; }
    ClassroomMode& classroomMode() { return *m_classroom; }
    Menus& menus() { return *m_menus; }
    StatusLine& statusLine() { return *m_status; }

protected:
    void closeEvent(QCloseEvent* e) override;
    void resizeEvent(QResizeEvent* e) override;
    void moveEvent(QMoveEvent* e) override;
    void keyPressEvent(QKeyEvent* e) override;

private:
    QWidget* buildCentre();
    void buildDocks();
    void wireViews();
    void wirePanels();
    void onChanged(Aspects changed);
    void openDropped(const QString& path);
    void fitScreen();
    void fitFrame();  // the frame (title bar, borders) brought inside the screen's free area
    void saveSettings();

    StartOptions m_options;
    Session* m_session;
    Views m_views;
    DockLayout* m_docks = nullptr;
    ExportController* m_export = nullptr;
    ClassroomMode* m_classroom = nullptr;
    Menus* m_menus = nullptr;
    StatusLine* m_status = nullptr;
    std::shared_ptr<PanelSink> m_logSink;
    bool m_galleryFilled = false;  // the gallery comes to the front for a new answer, not a rerun through other heads
    bool m_awaitingFrame = false;  // fitScreen ran; the window manager has not framed the window yet
};

}  // namespace vitscope::ui
