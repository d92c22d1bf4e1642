#pragma once
// The window's menus: File (models, images, datasets, recent files, export), Analysis, View, Help.
// Every action goes to the session or the export controller; check marks follow the state.
#include <QFlags>
#include <QObject>

#include <vector>
#include <QString>

class QAction;
class QMainWindow;
class QMenu;

namespace vitscope::ui {

struct State;
enum class Aspect : quint32;
class ClassroomMode;
class ExportController;
class Session;

class Menus : public QObject {
    Q_OBJECT
public:
    Menus(QMainWindow* window, Session& session, ExportController& exporter, ClassroomMode& classroom);
    void render(const State& s, QFlags<Aspect> changed);  // recent files, check marks
    QString shortcutsText() const;  // Help > Keyboard shortcuts (from the menus' actions)
    QString guideText() const;      // Help > Guide to the views
    void textSpanSettings();        // Analysis > TextSpan settings (a dialog)
    void heatmapSettings();         // Analysis > Heatmap settings (a dialog)

private:
    void buildFile();
    void buildOpen(QMenu* file);
    void buildExport(QMenu* file);
    void buildAnalysis();
    void buildView();
    void buildHelp();
    void fillDiscovered();
    void addRecent(const QString& key, const QString& path);
    void refreshRecent();

    QMainWindow* m_window;
    Session& m_session;
    ExportController& m_export;
    ClassroomMode& m_classroom;
    QMenu* m_recent = nullptr;
    QMenu* m_discovered = nullptr;
    QAction* m_subtract = nullptr;
    QAction* m_whole = nullptr;
    QAction* m_registers = nullptr;
    QAction* m_normBlocks = nullptr;
    std::vector<QAction*> m_precision;  // Analysis > Precision, one per name
    QAction* m_classroomAction = nullptr;
};

}  // namespace vitscope::ui
