#pragma once
// Classroom mode: full screen, larger text, the docks but the ledger hidden, the view settings off
// the projector, and the walkthrough banner over the canvas (Left / Right step, Esc leaves).
#include "views.h"

#include <QByteArray>
#include <QFont>
#include <QList>
#include <QObject>

class QAction;
class QKeyEvent;
class QMainWindow;

namespace vitscope::ui {

class DockLayout;
class Session;

class ClassroomMode : public QObject {
    Q_OBJECT
public:
    ClassroomMode(QMainWindow* window, Session& session, const Views& views, DockLayout& docks);
    bool isOn() const { return m_on; }
    void setOn(bool on);
    void relayout();  // the projector's proportions, again when the full-screen size arrives
    // Left / Right / Space step (outside text fields); true when the key was used.
    bool handleKey(QKeyEvent* e);

signals:
    void toggled(bool on);

protected:
    bool eventFilter(QObject* watched, QEvent* event) override;  // Esc on the menu bar

private:
    void onStep(int step);
    void scaleFonts(double scale);

    QMainWindow* m_window;
    Session& m_session;
    Views m_views;
    DockLayout& m_docks;
    QAction* m_leave;  // Esc, enabled while on
    bool m_on = false;
    QByteArray m_normalState;
    bool m_wasMaximized = false;
    int m_normalMetric = 0;  // GridMetric before the walkthrough set its own
    QList<int> m_normalSplit;
    QFont m_normalTooltipFont;
};

}  // namespace vitscope::ui
