#include "classroom_mode.h"

#include "classroom.h"
#include "controls.h"
#include "dock_layout.h"
#include "head_grid.h"
#include "image_canvas.h"
#include "ledger_view.h"
#include "session.h"

#include <QAbstractSpinBox>
#include <QAction>
#include <QApplication>
#include <QDockWidget>
#include <QKeyEvent>
#include <QLineEdit>
#include <QMainWindow>
#include <QMenuBar>
#include <QPlainTextEdit>
#include <QSplitter>
#include <QTextEdit>
#include <QToolTip>

namespace vitscope::ui {

ClassroomMode::ClassroomMode(QMainWindow* window, Session& session, const Views& views, DockLayout& docks)
    : QObject(window), m_window(window), m_session(session), m_views(views), m_docks(docks) {
    // Esc leaves, wherever the focus is (one press after a menu closes).
    m_leave = new QAction(tr("Leave classroom mode"), window);
    m_leave->setShortcut(Qt::Key_Escape);
    m_leave->setShortcutContext(Qt::WindowShortcut);
    m_leave->setEnabled(false);
    window->addAction(m_leave);
    connect(m_leave, &QAction::triggered, this, [this] { setOn(false); });
    connect(m_views.classroom, &Classroom::stepChanged, this, &ClassroomMode::onStep);
    // A menu closed with Esc leaves the menu bar holding the keyboard: its next Esc leaves too
    // (it had taken three presses).
    window->menuBar()->installEventFilter(this);
}

bool ClassroomMode::eventFilter(QObject* watched, QEvent* event) {
    if (m_on && watched == m_window->menuBar() && event->type() == QEvent::KeyPress &&
        static_cast<QKeyEvent*>(event)->key() == Qt::Key_Escape)
        QMetaObject::invokeMethod(this, [this] { setOn(false); }, Qt::QueuedConnection);
    return QObject::eventFilter(watched, event);
}

void ClassroomMode::scaleFonts(double scale) {
    QFont f = QApplication::font();
    f.setPointSizeF(f.pointSizeF() * scale);
    m_window->centralWidget()->setFont(scale == 1.0 ? QApplication::font() : f);
    m_views.grid->setFontScale(scale == 1.0 ? 1.0 : 1.6);
    m_views.canvas->setFontScale(scale == 1.0 ? 1.0 : 1.6);
    m_views.canvas->setColorbarRoomKept(scale != 1.0);  // the picture keeps its size through the steps
    m_views.ledger->setFontScale(scale == 1.0 ? 1.0 : 1.6);
}

void ClassroomMode::setOn(bool on) {
    if (on == m_on) return;
    m_on = on;
    m_leave->setEnabled(on);
    m_docks.setFrozen(on);
    auto* split = m_window->centralWidget()->findChild<QSplitter*>("centralSplit");
    if (on) {
        m_normalState = m_window->saveState();
        m_wasMaximized = m_window->isMaximized();
        m_normalMetric = static_cast<int>(m_session.state().metric);
        m_views.canvas->dismissMessage();  // an earlier error does not take over the walkthrough
        if (split) m_normalSplit = split->sizes();
        for (QDockWidget* d : m_window->findChildren<QDockWidget*>()) d->setVisible(d->widget() == m_views.ledger);
        scaleFonts(1.5);
        // Tooltips (a grid cell's texts, a bar's value) read from the back of the room too.
        m_normalTooltipFont = QToolTip::font();
        QFont tip = m_normalTooltipFont;
        tip.setPointSizeF(tip.pointSizeF() * 1.6);
        QToolTip::setFont(tip);
        // The view settings stay on the desk: the projector gets the text, the method and the views.
        m_views.text->setViewSettingsShown(false);
        m_views.classroom->show();
        m_views.classroom->setFocus();
        m_window->showFullScreen();
        relayout();
        m_views.classroom->setStep(0);
        onStep(0);
    } else {
        m_views.classroom->hide();
        scaleFonts(1.0);
        QToolTip::setFont(m_normalTooltipFont);
        m_views.text->setViewSettingsShown(true);
        m_views.canvas->setPatchGrid(0, 0);
        m_views.canvas->setMapShown(true);
        m_wasMaximized ? m_window->showMaximized() : m_window->showNormal();
        m_window->restoreState(m_normalState);
        m_session.setMetric(static_cast<GridMetric>(m_normalMetric));  // the walkthrough's heads step chose its own
        if (split && !m_normalSplit.isEmpty()) split->setSizes(m_normalSplit);
    }
    emit toggled(on);
}

void ClassroomMode::relayout() {
    if (!m_on) return;
    // The projector's layout: the grid and the ledger wide enough for their larger text, the
    // rest for the banner and the image.
    if (auto* ledgerDock = m_window->findChild<QDockWidget*>("ledgerDock"))
        m_window->resizeDocks({ledgerDock}, {std::max(ledgerDock->width(), m_window->width() / 3)}, Qt::Horizontal);
    auto* split = m_window->centralWidget()->findChild<QSplitter*>("centralSplit");
    if (split && split->count() == 2) {
        const int total = split->sizes().value(0) + split->sizes().value(1);
        split->setSizes({total * 36 / 100, total - total * 36 / 100});
    }
}

void ClassroomMode::onStep(int step) {
    const State& s = m_session.state();
    const bool patches = step == Classroom::Patches;
    // The patches step shows the bare patches; the map comes back at the next step.
    m_views.canvas->setPatchGrid(patches ? s.image.gridH : 0, patches ? s.image.gridW : 0);
    m_views.canvas->setMapShown(!patches);
    if (step == Classroom::Heads) {
        m_session.setMetric(GridMetric::DirectEffect);
        const HeadId strongest = s.strongestHead();
        if (strongest.valid()) m_session.select({strongest});  // the head the step names
    }
    if (step == Classroom::Layers) raiseDockOf(m_views.ledger);
}

bool ClassroomMode::handleKey(QKeyEvent* e) {
    if (!m_on) return false;
    // Arrow keys step through the walkthrough, except while a text field has focus (there they
    // edit the text, even at its ends).
    QWidget* focus = QApplication::focusWidget();
    const bool typing = focus && (qobject_cast<QLineEdit*>(focus) || qobject_cast<QAbstractSpinBox*>(focus) ||
                                  qobject_cast<QPlainTextEdit*>(focus) || qobject_cast<QTextEdit*>(focus));
    if (typing || !(e->key() == Qt::Key_Right || e->key() == Qt::Key_Left || e->key() == Qt::Key_Space)) return false;
    m_views.classroom->setStep(m_views.classroom->step() + (e->key() == Qt::Key_Left ? -1 : 1));
    return true;
}

}  // namespace vitscope::ui
