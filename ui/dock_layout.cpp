#include "dock_layout.h"

#include <QDockWidget>
#include <QEvent>
#include <QFrame>
#include <QMainWindow>
#include <QScrollArea>
#include <QSet>
#include <QTimer>

namespace vitscope::ui {

namespace {
bool verticalArea(Qt::DockWidgetArea a) { return a == Qt::BottomDockWidgetArea || a == Qt::TopDockWidgetArea; }
}  // namespace

DockLayout::DockLayout(QMainWindow* window) : QObject(window), m_window(window) {}

QDockWidget* DockLayout::add(const QString& title, const QString& name, QWidget* w, Qt::DockWidgetArea area, bool scroll) {
    auto* d = new QDockWidget(title, m_window);
    d->setObjectName(name);
    if (scroll) {
        auto* s = new QScrollArea;
        s->setWidget(w);
        s->setWidgetResizable(true);
        s->setFrameShape(QFrame::NoFrame);
        d->setWidget(s);
    } else {
        d->setWidget(w);
    }
    m_window->addDockWidget(area, d);
    d->installEventFilter(this);
    return d;
}

bool DockLayout::eventFilter(QObject* watched, QEvent* event) {
    // A dock's share is taken when the user resizes it while the window keeps its size.
    auto* dock = qobject_cast<QDockWidget*>(watched);
    const QSize size = m_window->size();
    if (dock && event->type() == QEvent::Resize && size == m_laidOut && !m_frozen && !m_settling && !dock->isFloating() && size.width() > 0 &&
        size.height() > 0)
        m_share[dock] = verticalArea(m_window->dockWidgetArea(dock)) ? dock->height() / double(size.height()) : dock->width() / double(size.width());
    return QObject::eventFilter(watched, event);
}

void DockLayout::windowResized(const QSize& size) {
    const QSize before = m_laidOut;
    m_laidOut = size;
    if (!before.isValid() || m_frozen || m_window->isFullScreen()) return;
    // The layout squeezes the docks first (a window made smaller gives them less): those sizes are
    // not the user's, so no share is taken until the shares are applied and laid out.
    m_settling = true;
    QTimer::singleShot(0, this, [this] {
        applyShares();
        QTimer::singleShot(0, this, [this] { m_settling = false; });
    });
}

void DockLayout::applyShares() {
    // The window's layout gives most of a change to the central widget: give each docked panel its
    // share of the new size back. One dock per area (tabbed docks share one size).
    QList<QDockWidget*> vertical, horizontal;
    QList<int> heights, widths;
    QSet<Qt::DockWidgetArea> done;
    for (QDockWidget* d : m_window->findChildren<QDockWidget*>()) {
        if (d->isFloating() || !d->isVisible() || !m_share.contains(d) || d->visibleRegion().isEmpty()) continue;
        const Qt::DockWidgetArea area = m_window->dockWidgetArea(d);
        if (done.contains(area)) continue;
        done.insert(area);
        if (verticalArea(area)) {
            vertical << d;
            heights << qRound(m_share[d] * m_window->height());
        } else {
            horizontal << d;
            widths << qRound(m_share[d] * m_window->width());
        }
    }
    if (!vertical.isEmpty()) m_window->resizeDocks(vertical, heights, Qt::Vertical);
    if (!horizontal.isEmpty()) m_window->resizeDocks(horizontal, widths, Qt::Horizontal);
}

}  // namespace vitscope::ui
