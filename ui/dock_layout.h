#pragma once
// The window's docked panels: made, tabbed and sized here, and each keeps its share of the window
// when the window is resized (the central view does not shrink to a strip at 1024 x 700 while the
// docks keep their 1400 x 900 sizes).
#include <QHash>
#include <QObject>
#include <QSize>

class QDockWidget;
class QMainWindow;
class QWidget;

namespace vitscope::ui {

class DockLayout : public QObject {
    Q_OBJECT
public:
    explicit DockLayout(QMainWindow* window);
    // A dock titled `title` holding `w`; `scroll`: tall or wide content scrolls inside the dock.
    QDockWidget* add(const QString& title, const QString& name, QWidget* w, Qt::DockWidgetArea area, bool scroll = false);
    void setFrozen(bool frozen) { m_frozen = frozen; }  // classroom mode: shares are neither taken nor applied
    void windowResized(const QSize& size);              // from the window's resizeEvent

protected:
    bool eventFilter(QObject* watched, QEvent* event) override;

private:
    void applyShares();

    QMainWindow* m_window;
    QHash<QDockWidget*, double> m_share;  // height share (top / bottom docks) or width share (left / right)
    QSize m_laidOut;                      // the window's size at its last resize
    bool m_frozen = false;
    bool m_settling = false;  // the window was just resized: the docks' sizes now are the layout's, not the user's
};

}  // namespace vitscope::ui
