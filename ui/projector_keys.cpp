// The projector from the keyboard: Tab reaches the plot; arrows move a cursor from point to point
// (the nearest point in the arrow's direction), Space picks or unpicks the cursor's point, Enter
// opens it (as a click), Ctrl+A picks the points in view, Escape clears the picks; Shift+arrows
// pan, + and - zoom around the cursor, Home shows every point again.
#include "projector.h"

#include <qcustomplot.h>

#include <QKeyEvent>
#include <QMetaObject>
#include <QToolTip>

#include <cmath>

namespace vitscope::ui {

namespace {

bool isProjectorKey(int key, Qt::KeyboardModifiers mods) {
    switch (key) {
    case Qt::Key_Left: case Qt::Key_Right: case Qt::Key_Up: case Qt::Key_Down: case Qt::Key_Space: case Qt::Key_Return:
    case Qt::Key_Enter: case Qt::Key_Escape: case Qt::Key_Plus: case Qt::Key_Equal: case Qt::Key_Minus: case Qt::Key_Home:
        return true;
    case Qt::Key_A:
        return mods & Qt::ControlModifier;
    default:
        return false;
    }
}

}  // namespace

bool Projector::eventFilter(QObject* watched, QEvent* e) {
    // The plot resized without the projector (the picked strip shown or hidden): the legend's
    // columns again, once the plot has taken its new size.
    if (watched == m_plot && e->type() == QEvent::Resize && m_plot->legend->visible())
        QMetaObject::invokeMethod(this, [this] { fitLegend(); }, Qt::QueuedConnection);
    if (watched == m_plot && (e->type() == QEvent::KeyPress || e->type() == QEvent::ShortcutOverride)) {
        auto* k = static_cast<QKeyEvent*>(e);
        if (m_x.empty() || !isProjectorKey(k->key(), k->modifiers())) return QWidget::eventFilter(watched, e);
        if (e->type() == QEvent::ShortcutOverride) {  // the window's shortcuts (Escape, Ctrl+A) wait while the plot has focus
            e->accept();
            return true;
        }
        return handleKey(k->key(), k->modifiers());
    }
    return QWidget::eventFilter(watched, e);
}

bool Projector::handleKey(int key, Qt::KeyboardModifiers mods) {
    const bool shift = mods & Qt::ShiftModifier;
    const int dx = key == Qt::Key_Left ? -1 : key == Qt::Key_Right ? 1 : 0, dy = key == Qt::Key_Up ? -1 : key == Qt::Key_Down ? 1 : 0;
    if ((dx || dy) && shift) {  // pan a tenth of the view
        m_plot->xAxis->moveRange(0.1 * dx * m_plot->xAxis->range().size());
        m_plot->yAxis->moveRange(-0.1 * dy * m_plot->yAxis->range().size());
        m_plot->replot();
    } else if (dx || dy) {
        placeCursor(rowToward(dx, dy));
    } else if (key == Qt::Key_Space) {
        if (m_cursor < 0) {  // the first Space lands on a point; the next picks it
            placeCursor(rowToward(0, 0));
            return true;
        }
        QVector<int> rows = m_pickedRows;
        if (!rows.removeOne(m_cursor)) rows << m_cursor;
        emit rowsPicked(rows);
    } else if (key == Qt::Key_Return || key == Qt::Key_Enter) {
        activateRow(m_cursor);
    } else if (key == Qt::Key_A) {
        pickVisible();
    } else if (key == Qt::Key_Escape) {
        if (!m_pickedRows.isEmpty()) emit rowsPicked({});
    } else if (key == Qt::Key_Plus || key == Qt::Key_Equal || key == Qt::Key_Minus) {
        zoomBy(key == Qt::Key_Minus ? 1.25 : 1 / 1.25);
    } else if (key == Qt::Key_Home) {
        m_plot->rescaleAxes();
        m_plot->xAxis->scaleRange(m_pointNames.isEmpty() ? 1.08 : 1.25);
        m_plot->yAxis->scaleRange(m_pointNames.isEmpty() ? 1.08 : 1.25);
        if (!m_plot->xAxis->tickLabels()) {  // a layout (not text axes): equal scales both ways, as drawn
            m_plot->replot();
            const double xPerPixel = m_plot->xAxis->range().size() / std::max(1, m_plot->axisRect()->width());
            const double yPerPixel = m_plot->yAxis->range().size() / std::max(1, m_plot->axisRect()->height());
            if (xPerPixel > yPerPixel) m_plot->yAxis->setScaleRatio(m_plot->xAxis, 1.0);
            else m_plot->xAxis->setScaleRatio(m_plot->yAxis, 1.0);
        }
        m_plot->replot();
    }
    return true;
}

// From the cursor (none: the view's centre), the point in the arrow's 90-degree cone that is
// nearest, a step sideways counting twice a step along; (0, 0): the point nearest the centre.
int Projector::rowToward(int dx, int dy) const {
    QPointF from = m_plot->axisRect()->rect().center();
    const bool fromCursor = m_cursor >= 0 && pointPosition(m_cursor, &from);
    if (!fromCursor) dx = dy = 0;  // the first step lands on the point nearest the centre
    int best = fromCursor ? m_cursor : -1;
    double bestCost = 0;
    for (std::size_t i = 0; i < m_x.size(); ++i) {
        const double px = m_plot->xAxis->coordToPixel(m_x[i]) - from.x(), py = m_plot->yAxis->coordToPixel(m_y[i]) - from.y();
        double cost = std::hypot(px, py);
        if (dx || dy) {
            const double along = px * dx + py * dy, side = std::abs(px * dy - py * dx);
            if (along <= 0 || side > along) continue;  // behind, or outside the cone
            cost = along + 2 * side;
        }
        if (int(i) != m_cursor && (best < 0 || best == m_cursor || cost < bestCost)) {
            best = int(i);
            bestCost = cost;
        }
    }
    return best;
}

void Projector::placeCursor(int row) {
    if (row < 0 || std::size_t(row) >= m_x.size()) return;
    m_cursor = row;
    if (!m_cursorGraph) {
        m_cursorGraph = m_plot->addGraph();
        m_cursorGraph->setName(tr("cursor"));
        m_cursorGraph->removeFromLegend();
        m_cursorGraph->setLineStyle(QCPGraph::lsNone);
        m_cursorGraph->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCrossCircle, QPen(QColor(200, 30, 30), 2), Qt::NoBrush, 14));
    }
    const double x = m_x[std::size_t(row)], y = m_y[std::size_t(row)];
    m_cursorGraph->setData(QVector<double>{x}, QVector<double>{y});
    // Off the view: the view moves to have it in the middle.
    if (!m_plot->xAxis->range().contains(x) || !m_plot->yAxis->range().contains(y)) {
        m_plot->xAxis->setRange(x, m_plot->xAxis->range().size(), Qt::AlignCenter);
        m_plot->yAxis->setRange(y, m_plot->yAxis->range().size(), Qt::AlignCenter);
    }
    m_plot->replot();
    QPointF at;
    pointPosition(row, &at);
    const QString what = hoverText(row);
    m_plot->setAccessibleDescription(row < m_paths.size() ? m_paths[row] : row < m_pointNames.size() ? m_pointNames[row] : QString());
    if (m_plot->isVisible()) QToolTip::showText(m_plot->mapToGlobal(at.toPoint()), what, m_plot);
}

void Projector::setCursorShown(bool shown) {
    if (!m_cursorGraph) return;
    m_cursorGraph->setVisible(shown);
    m_plot->replot();
}

void Projector::pickVisible() {
    QVector<int> rows;
    for (std::size_t i = 0; i < m_x.size(); ++i)
        if (m_plot->xAxis->range().contains(m_x[i]) && m_plot->yAxis->range().contains(m_y[i])) rows << int(i);
    emit rowsPicked(rows);
}

void Projector::zoomBy(double factor) {
    QPointF centre(m_plot->xAxis->range().center(), m_plot->yAxis->range().center());
    if (m_cursor >= 0) centre = {m_x[std::size_t(m_cursor)], m_y[std::size_t(m_cursor)]};
    m_plot->xAxis->scaleRange(factor, centre.x());
    m_plot->yAxis->scaleRange(factor, centre.y());
    m_plot->replot();
}

}  // namespace vitscope::ui
