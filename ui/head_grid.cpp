#include "head_grid.h"

#include "session.h"

#include <QHelpEvent>
#include <QKeyEvent>
#include <QMouseEvent>
#include <QPainter>
#include <QToolTip>

#include <algorithm>
#include <cmath>

namespace vitscope::ui {

namespace {
constexpr int kMlpGap = 10;  // gap before the MLP column

// Row and column labels shrink to their cells when the grid is small for its font (classroom
// fonts, Swin's many heads): no label runs into its neighbour.
QFont fittedFont(QFont lf, const QString& widest, int room) {
    const QFontMetrics fm(lf);
    const double byHeight = fm.height() > room ? double(room) / fm.height() : 1.0;
    const double byWidth = fm.horizontalAdvance(widest) > room ? double(room) / fm.horizontalAdvance(widest) : 1.0;
    lf.setPointSizeF(std::max(4.0, lf.pointSizeF() * std::min(byHeight, byWidth)));
    return lf;
}
}  // namespace

HeadGrid::HeadGrid(QWidget* parent) : QWidget(parent) {
    setMouseTracking(true);
    setFocusPolicy(Qt::StrongFocus);
    setAccessibleName("Layer x head grid");
}

void HeadGrid::setShape(int layers, int heads, bool poolRow) {
    m_layers = layers;
    m_heads = heads;
    m_poolRow = poolRow && layers > 1;
    m_rowHeads.clear();
    m_rowLabels.clear();
    m_sideTitle.clear();
    m_side.clear();
    m_values.clear();
    m_mlp.clear();
    m_descriptions.clear();
    m_selected.clear();
    m_metric.clear();
    updateGeometry();
    update();
}

void HeadGrid::setRows(const std::vector<int>& headsPerRow, const QStringList& labels) {
    m_rowHeads = static_cast<int>(headsPerRow.size()) == m_layers ? headsPerRow : std::vector<int>{};
    m_rowLabels = labels.size() == m_layers ? labels : QStringList{};
    updateGeometry();
    update();
}

int HeadGrid::headsIn(int layer) const {
    if (layer < 0 || layer >= m_layers) return 0;
    return m_rowHeads.empty() ? m_heads : std::min(m_heads, m_rowHeads[static_cast<std::size_t>(layer)]);
}

QString HeadGrid::rowLabel(int layer) const {
    if (m_poolRow && layer == m_layers - 1) return tr("pool");
    return m_rowLabels.isEmpty() ? QString::number(layer) : m_rowLabels[layer];
}

void HeadGrid::setMetric(const QString& name, const std::vector<float>& values, const std::vector<float>& mlp,
                         const std::vector<float>& side) {
    m_metric = name;
    m_values = values.size() == static_cast<std::size_t>(m_layers * m_heads) ? values : std::vector<float>{};
    m_mlp = mlp.size() == static_cast<std::size_t>(m_layers) ? mlp : std::vector<float>{};
    m_side = side.size() == static_cast<std::size_t>(m_layers) ? side : std::vector<float>{};
    update();
}

void HeadGrid::setSideColumn(const QString& title) {
    m_sideTitle = title;
    updateGeometry();
    update();
}

QRect HeadGrid::mlpRect(int layer) const {
    const QRect a = gridArea();
    if (a.isEmpty() || layer < 0 || layer >= m_layers) return {};
    const int cell = a.width() / m_heads;
    return {a.right() + 1 + kMlpGap, a.top() + layer * cell, cell, cell};
}

int HeadGrid::mlpRowAt(const QPoint& pos) const {
    for (int l = 0; l < m_layers; ++l)
        if (mlpRect(l).contains(pos)) return l;
    return -1;
}

QRect HeadGrid::sideRect(int layer) const {
    const QRect a = gridArea();
    if (a.isEmpty() || m_sideTitle.isEmpty() || layer < 0 || layer >= m_layers) return {};
    const int cell = a.width() / m_heads;
    return {a.right() + 1 + kMlpGap + cell + kMlpGap, a.top() + layer * cell, cell, cell};
}

void HeadGrid::setDescriptions(const QStringList& perHead) {
    m_descriptions = perHead;
    update();
}

void HeadGrid::setColormap(ColormapKind kind) {
    m_colormap = kind;
    update();
}

void HeadGrid::setFontScale(double scale) {
    m_fontScale = scale;
    updateGeometry();
    update();
}

QList<HeadId> HeadGrid::selection() const { return m_selected; }

void HeadGrid::setSelection(const QList<HeadId>& heads) {
    m_selected.clear();
    for (const HeadId& h : heads)
        if (h.layer >= 0 && h.layer < m_layers && h.head >= 0 && h.head < headsIn(h.layer) && !m_selected.contains(h))
            m_selected.push_back(gridHead(h.layer, h.head, m_layers - 1, m_poolRow));
    update();
    emit selectionChanged(m_selected);
}

float HeadGrid::value(int layer, int head) const {
    if (m_values.empty()) return std::nanf("");
    return m_values[static_cast<std::size_t>(layer * m_heads + head)];
}

int HeadGrid::labelBand() const {
    QFont f = font();
    f.setPointSizeF(f.pointSizeF() * m_fontScale);
    int wide = std::max(QFontMetrics(f).horizontalAdvance("MLP"), m_poolRow ? QFontMetrics(f).horizontalAdvance(tr("pool")) : 0);
    for (const QString& label : m_rowLabels) wide = std::max(wide, QFontMetrics(f).horizontalAdvance(label));
    return wide + 12;
}

int HeadGrid::barBand() const {
    QFont f = font();
    f.setPointSizeF(f.pointSizeF() * m_fontScale);
    return 14 + 2 * QFontMetrics(f).height() + 6;
}

QString HeadGrid::mlpName(int row) const { return m_poolRow && row == m_layers - 1 ? QString("pool.mlp") : QString("mlp.%1").arg(row); }

void HeadGrid::setSelectionShown(bool shown) {
    m_showSelection = shown;
    update();
}

QSize HeadGrid::sizeHint() const {
    const int cell = static_cast<int>(34 * m_fontScale);
    const int extra = m_sideTitle.isEmpty() ? 0 : cell + kMlpGap;
    return {labelBand() + (m_heads + 1) * cell + kMlpGap + extra + 8, labelBand() + m_layers * cell + barBand() + 8};
}

QSize HeadGrid::minimumSizeHint() const { return {labelBand() + (m_heads + 1) * 10 + kMlpGap, labelBand() + m_layers * 10 + barBand()}; }

QRect HeadGrid::gridArea() const {
    const int extra = m_sideTitle.isEmpty() ? 0 : 1;
    const int w = width() - labelBand() - (1 + extra) * kMlpGap - 8, h = height() - labelBand() - barBand() - 8;
    if (m_layers <= 0 || m_heads <= 0) return {};
    const int cell = std::max(4, std::min(w / (m_heads + 1 + extra), h / m_layers));
    return {labelBand(), labelBand(), cell * m_heads, cell * m_layers};
}

QRect HeadGrid::cellRect(int layer, int head) const {
    const QRect a = gridArea();
    if (a.isEmpty()) return {};
    const int cell = a.width() / m_heads;
    return {a.left() + head * cell, a.top() + layer * cell, cell, cell};
}

HeadId HeadGrid::headAt(const QPoint& p) const {
    const QRect a = gridArea();
    if (a.isEmpty() || !a.contains(p)) return {};
    const int cell = a.width() / m_heads;
    const int layer = std::min(m_layers - 1, (p.y() - a.top()) / cell);
    const int head = std::min(m_heads - 1, (p.x() - a.left()) / cell);
    if (head >= headsIn(layer)) return {};  // Swin: no such head in this layer
    return gridHead(layer, head, m_layers - 1, m_poolRow);
}

void HeadGrid::paintEvent(QPaintEvent*) {
    QPainter p(this);
    p.setRenderHint(QPainter::Antialiasing, false);
    p.fillRect(rect(), palette().base());
    const QRect a = gridArea();
    if (a.isEmpty()) {
        p.drawText(rect(), Qt::AlignCenter, tr("No model"));
        return;
    }
    QFont f = font();
    f.setPointSizeF(f.pointSizeF() * m_fontScale);
    p.setFont(f);
    const ValueScale scale = valueScale();
    paintCells(p, scale);
    // Labels.
    p.setPen(palette().text().color());
    paintColumnLabels(p);
    paintRowLabels(p);
    paintRowRules(p);
    paintSelection(p);
    paintColorbar(p, scale);
    p.drawText(QRect(0, 0, labelBand(), labelBand()), Qt::AlignCenter, tr("L\\H"));
}

HeadGrid::ValueScale HeadGrid::valueScale() const {
    // Heads and the MLP column share one scale so that they compare.
    ValueScale s;
    for (const std::vector<float>* v : {&m_values, &m_mlp, &m_side})
        for (float x : *v)
            if (std::isfinite(x)) {
                s.lo = s.any ? std::min(s.lo, x) : x;
                s.hi = s.any ? std::max(s.hi, x) : x;
                s.any = true;
            }
    return s;
}

void HeadGrid::paintCells(QPainter& p, const ValueScale& scale) const {
    const float span = scale.hi > scale.lo ? scale.hi - scale.lo : 1.f;
    auto fill = [&](const QRect& r, float v) {
        p.fillRect(r.adjusted(1, 1, -1, -1), std::isfinite(v) && scale.any ? colormapColor(m_colormap, (v - scale.lo) / span) : palette().mid().color());
    };
    for (int l = 0; l < m_layers; ++l)
        for (int h = 0; h < headsIn(l); ++h) fill(cellRect(l, h), value(l, h));
    for (int l = 0; l < m_layers; ++l) fill(mlpRect(l), m_mlp.empty() ? std::nanf("") : m_mlp[static_cast<std::size_t>(l)]);
    // The side column (MaxViT's MBConv): only the rows that have one.
    if (!m_sideTitle.isEmpty())
        for (int l = 0; l < m_layers; ++l) {
            const float v = m_side.empty() ? std::nanf("") : m_side[static_cast<std::size_t>(l)];
            if (!m_side.empty() && std::isnan(v)) continue;
            fill(sideRect(l), v);
        }
}

void HeadGrid::paintColumnLabels(QPainter& p) const {
    const QRect a = gridArea();
    const int cell = a.width() / m_heads;
    const int mlpX = a.right() + 1 + kMlpGap;  // the MLP column's left edge
    p.save();
    p.setFont(fittedFont(p.font(), QString::number(m_heads - 1), cell));
    for (int h = 0; h < m_heads; ++h) p.drawText(QRect(a.left() + h * cell, 0, cell, labelBand() - 4), Qt::AlignHCenter | Qt::AlignBottom, QString::number(h));
    p.restore();
    {
        // The column header fits its column (large classroom fonts would run past the edge).
        p.save();
        QFont hf = p.font();
        const int room = cell + kMlpGap;
        const int wide = QFontMetrics(hf).horizontalAdvance("MLP");
        if (wide > room && wide > 0) hf.setPointSizeF(std::max(4.0, hf.pointSizeF() * room / wide));
        p.setFont(hf);
        p.drawText(QRect(mlpX + cell / 2 - room / 2, 0, room, labelBand() - 4), Qt::AlignHCenter | Qt::AlignBottom, "MLP");
        if (!m_sideTitle.isEmpty()) {
            const int sideWide = QFontMetrics(hf).horizontalAdvance(m_sideTitle);
            if (sideWide > room && sideWide > 0) hf.setPointSizeF(std::max(4.0, hf.pointSizeF() * room / sideWide));
            p.setFont(hf);
            const QRect s = sideRect(0);
            p.drawText(QRect(s.center().x() - room / 2, 0, room, labelBand() - 4), Qt::AlignHCenter | Qt::AlignBottom, m_sideTitle);
        }
        p.restore();
    }
}

void HeadGrid::paintRowLabels(QPainter& p) const {
    const QRect a = gridArea();
    const int cell = a.width() / m_heads;
    p.save();
    {
        const QFont base = p.font();
        QFont rf = fittedFont(p.font(), "0", cell);  // the height bound
        rf.setPointSizeF(std::min(rf.pointSizeF(), base.pointSizeF()));
        p.setFont(rf);
    }
    for (int l = 0; l < m_layers; ++l) {
        const bool pool = m_poolRow && l == m_layers - 1;
        p.drawText(QRect(0, a.top() + l * cell, labelBand() - 6, cell), Qt::AlignRight | Qt::AlignVCenter, pool ? tr("pool") : rowLabel(l));
    }
    p.restore();
}

void HeadGrid::paintRowRules(QPainter& p) const {
    const QRect a = gridArea();
    const int cell = a.width() / m_heads;
    const int mlpX = a.right() + 1 + kMlpGap;  // the MLP column's left edge
    // Swin: a rule between stages (the label's "sK." changes).
    for (int l = 1; l < m_rowLabels.size(); ++l) {
        if (m_rowLabels[l].section('.', 0, 0) == m_rowLabels[l - 1].section('.', 0, 0)) continue;
        p.save();
        p.setPen(QPen(palette().text().color(), 1, Qt::DashLine));
        const int y = a.top() + l * cell;
        p.drawLine(0, y, m_sideTitle.isEmpty() ? mlpX + cell : sideRect(0).right(), y);
        p.restore();
    }
    if (m_poolRow) {  // the pooling row is another decomposition of the output: set it apart
        p.save();
        p.setPen(QPen(palette().text().color(), 2));
        const int y = a.top() + (m_layers - 1) * cell;
        p.drawLine(a.left(), y, mlpX + cell, y);
        p.restore();
    }
}

void HeadGrid::paintSelection(QPainter& p) const {
    if (!m_showSelection) return;
    // The highlight between a dark line outside and a white one inside: it reads on every colour of
    // the map (the highlight alone vanished on blue-green cells).
    const int cell = gridArea().width() / m_heads, w = std::max(2, cell / 10);
    p.setBrush(Qt::NoBrush);
    for (const HeadId& h : m_selected) {
        const QRect r = cellRect(h.layer, h.head);
        p.setPen(QPen(QColor(20, 20, 20), 1));
        p.drawRect(r.adjusted(0, 0, -1, -1));
        p.setPen(QPen(palette().highlight().color(), w, Qt::SolidLine, Qt::SquareCap, Qt::MiterJoin));
        const int in = 1 + w / 2;
        p.drawRect(r.adjusted(in, in, -in - 1, -in - 1));
        p.setPen(QPen(Qt::white, 1));
        p.drawRect(r.adjusted(1 + w, 1 + w, -2 - w, -2 - w));
    }
}

void HeadGrid::paintColorbar(QPainter& p, const ValueScale& scale) const {
    const QRect a = gridArea();
    const int cell = a.width() / m_heads;
    // Colorbar with the metric's name and range.
    const QRect bar(a.left(), a.bottom() + 10, a.width() + kMlpGap + cell + (m_sideTitle.isEmpty() ? 0 : kMlpGap + cell), 10);
    for (int x = 0; x < bar.width(); ++x) {
        p.setPen(colormapColor(m_colormap, x / double(std::max(1, bar.width() - 1))));
        p.drawLine(bar.left() + x, bar.top(), bar.left() + x, bar.bottom());
    }
    p.setPen(palette().text().color());
    const QRect text(bar.left(), bar.bottom() + 1, bar.width(), height() - bar.bottom() - 1);
    if (scale.any) {
        // The range's two ends never run into each other: smaller type when the bar is narrow.
        const QString los = QString::number(scale.lo, 'g', 3), his = QString::number(scale.hi, 'g', 3);
        p.save();
        QFont rf = p.font();
        const int need = p.fontMetrics().horizontalAdvance(los) + p.fontMetrics().horizontalAdvance(his) + 8;
        if (need > text.width() && need > 0) rf.setPointSizeF(std::max(4.0, rf.pointSizeF() * text.width() / need));
        p.setFont(rf);
        p.drawText(text, Qt::AlignLeft | Qt::AlignTop, los);
        p.drawText(text, Qt::AlignRight | Qt::AlignTop, his);
        p.restore();
    }
    const QRect nameRow(0, text.top() + p.fontMetrics().height(), width(), p.fontMetrics().height() + 2);
    // The metric's name: smaller type when the panel is narrow (down to the unscaled size), then elided.
    const QString name = m_metric.isEmpty() ? tr("no metric") : m_metric;
    p.save();
    QFont nf = p.font();
    const int nameWidth = p.fontMetrics().horizontalAdvance(name);
    if (nameWidth > width() - 4 && nameWidth > 0)
        nf.setPointSizeF(std::max(font().pointSizeF(), nf.pointSizeF() * (width() - 4) / nameWidth));
    p.setFont(nf);
    p.drawText(nameRow, Qt::AlignHCenter | Qt::AlignTop, p.fontMetrics().elidedText(name, Qt::ElideRight, width() - 4));
    p.restore();
}

void HeadGrid::mousePressEvent(QMouseEvent* e) {
    const QPoint pos = e->position().toPoint();
    const QRect a = gridArea();
    if (!a.isEmpty() && pos.x() < a.left() && pos.y() >= a.top() && pos.y() <= a.bottom()) {
        // A layer's label selects the whole layer (ctrl adds it to the selection).
        const int layer = std::min(m_layers - 1, (pos.y() - a.top()) / (a.width() / m_heads));
        if (!(e->modifiers() & Qt::ControlModifier)) m_selected.clear();
        for (int k = 0; k < headsIn(layer); ++k)
            if (!m_selected.contains(HeadId{layer, k})) m_selected.push_back(gridHead(layer, k, m_layers - 1, m_poolRow));
        update();
        emit selectionChanged(m_selected);
        return;
    }
    const HeadId h = headAt(pos);
    if (h.layer < 0) {
        // The MLP column: its cell names the layer's MLP (the selection of heads stays).
        const int row = mlpRowAt(pos);
        if (row >= 0) emit mlpActivated(row);
        return;
    }
    if (e->modifiers() & Qt::ShiftModifier && m_anchor.layer >= 0) {
        for (int l = std::min(m_anchor.layer, h.layer); l <= std::max(m_anchor.layer, h.layer); ++l)
            for (int k = std::min(m_anchor.head, h.head); k <= std::min(std::max(m_anchor.head, h.head), headsIn(l) - 1); ++k)
                if (!m_selected.contains(HeadId{l, k})) m_selected.push_back(gridHead(l, k, m_layers - 1, m_poolRow));
    } else if (e->modifiers() & Qt::ControlModifier) {
        if (m_selected.contains(h)) m_selected.removeAll(h);
        else m_selected.push_back(h);
        m_anchor = h;
    } else {
        m_selected = {h};
        m_anchor = h;
    }
    update();
    emit selectionChanged(m_selected);
    emit headActivated(h);
}

void HeadGrid::keyPressEvent(QKeyEvent* e) {
    const int dl = e->key() == Qt::Key_Up ? -1 : e->key() == Qt::Key_Down ? 1 : 0;
    const int dh = e->key() == Qt::Key_Left ? -1 : e->key() == Qt::Key_Right ? 1 : 0;
    if ((dl == 0 && dh == 0) || m_layers <= 0) {
        QWidget::keyPressEvent(e);
        return;
    }
    HeadId from = m_anchor.valid() ? m_anchor : (m_selected.isEmpty() ? HeadId{0, 0} : m_selected.back());
    int layer = std::clamp(from.layer + dl, 0, m_layers - 1);
    // Rows with fewer heads (Swin, MaxViT): the nearest head the row has.
    int head = std::clamp(from.head + dh, 0, std::max(0, headsIn(layer) - 1));
    if (!m_anchor.valid() && m_selected.isEmpty()) layer = 0, head = 0;
    const HeadId h = gridHead(layer, head, m_layers - 1, m_poolRow);
    m_selected = {h};
    m_anchor = h;
    update();
    emit selectionChanged(m_selected);
    emit headActivated(h);
}

bool HeadGrid::event(QEvent* e) {
    if (e->type() == QEvent::ToolTip) {
        auto* help = static_cast<QHelpEvent*>(e);
        const HeadId h = headAt(help->pos());
        // The MLP (and MBConv) column: the layer's value under the metric.
        const QRect a = gridArea();
        if (h.layer < 0 && !a.isEmpty()) {
            const int cell = a.width() / m_heads;
            const int row = (help->pos().y() - a.top()) / std::max(1, cell);
            if (row >= 0 && row < m_layers && help->pos().y() >= a.top()) {
                QString tip;
                if (mlpRect(row).contains(help->pos())) {
                    const float v = m_mlp.empty() ? std::nanf("") : m_mlp[static_cast<std::size_t>(row)];
                    tip = QString("<b>%1</b>").arg(mlpName(row));
                    if (!m_rowLabels.isEmpty() && !(m_poolRow && row == m_layers - 1)) tip += QString(" (%1)").arg(m_rowLabels[row]);
                    if (std::isfinite(v)) tip += QString("<br>%1: %2").arg(m_metric.toHtmlEscaped()).arg(v, 0, 'g', 4);
                } else if (sideRect(row).contains(help->pos()) && !m_side.empty() && std::isfinite(m_side[static_cast<std::size_t>(row)])) {
                    tip = QString("<b>%1</b> %2<br>%3: %4").arg(m_sideTitle, m_rowLabels.value(row).section('.', 0, 1))
                              .arg(m_metric.toHtmlEscaped())
                              .arg(m_side[static_cast<std::size_t>(row)], 0, 'g', 4);
                }
                if (!tip.isEmpty()) {
                    QToolTip::showText(help->globalPos(), tip, this);
                    return true;
                }
            }
        }
        if (h.layer < 0) {
            QToolTip::hideText();
            return true;
        }
        QString tip = QString("<b>head %1</b>").arg(h.name());
        if (!m_rowLabels.isEmpty() && !h.pool) tip += QString(" (%1.h%2)").arg(m_rowLabels[h.layer]).arg(h.head);
        const float v = value(h.layer, h.head);
        if (std::isfinite(v)) tip += QString("<br>%1: %2").arg(m_metric.toHtmlEscaped()).arg(v, 0, 'g', 4);
        const int i = h.layer * m_heads + h.head;
        if (i < m_descriptions.size() && !m_descriptions[i].isEmpty()) tip += "<br>" + m_descriptions[i].toHtmlEscaped();
        QToolTip::showText(help->globalPos(), tip, this);
        return true;
    }
    return QWidget::event(e);
}


void HeadGrid::render(const State& s, QFlags<Aspect> changed) {
    const ModelSummary& m = s.model;
    if (changed & Aspect::Model) {
        setShape(m.gridLayers(), m.heads, m.poolHeads > 0);
        QStringList labels;
        for (const std::string& l : m.layerLabels) labels << QString::fromStdString(l);
        setRows(m.headsPerLayer, labels);
        setSideColumn(m.convBlocks > 0 ? tr("MBConv") : QString());
    }
    if (changed & (Aspect::Descriptions | Aspect::Model)) {
        QStringList tips;
        for (int i = 0; i < m.gridLayers() * m.heads; ++i) tips << QString();
        for (const HeadDescription& d : s.descriptions) {
            QStringList texts;
            for (const TextPick& p : d.picks) texts << QString::fromStdString(p.text);
            const int cell = d.layer * m.heads + d.index;
            if (cell >= 0 && cell < tips.size())
                tips[cell] = texts.join("; ") + tr("\n(TextSpan on %1-convention terms, text rank %2)").arg(QString::fromStdString(d.convention)).arg(d.rank);
        }
        setDescriptions(tips);
    }
    if (changed & (Aspect::Grid | Aspect::Image | Aspect::Ledger | Aspect::Descriptions | Aspect::Model | Aspect::Dataset)) {
        QString name;
        const GridValues g = s.gridValues(&name);
        setMetric(name, g.heads.values, g.mlp, g.side);
    }
    if ((changed & (Aspect::Selection | Aspect::Model)) && selection() != s.selection) {
        const QSignalBlocker block(this);
        setSelection(s.selection);
    }
}

}  // namespace vitscope::ui
