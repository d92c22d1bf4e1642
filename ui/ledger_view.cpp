#include "ledger_view.h"

#include "colormap.h"
#include "plot_legend.h"

#include <qcustomplot.h>

#include <QLabel>
#include <QMouseEvent>
#include <QToolTip>
#include <QVBoxLayout>

#include <cmath>
#include <map>

namespace vitscope::ui {

LedgerView::LedgerView(QWidget* parent) : QWidget(parent) {
    auto* layout = new QVBoxLayout(this);
    m_summary = new QLabel(tr("Open an image and type a text"));
    m_summary->setWordWrap(true);
    m_summary->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_plot = new QCustomPlot;
    m_plot->setObjectName("ledgerPlot");
    m_plot->setMinimumHeight(180);
    layout->addWidget(m_summary);
    layout->addWidget(m_plot, 1);
    m_plot->installEventFilter(this);
    m_plot->setMouseTracking(true);  // hover values without a button held
    connect(m_plot, &QCustomPlot::mouseMove, this, [this](QMouseEvent* e) {
        const QString text = valueAt(e->position().toPoint());
        if (text.isEmpty()) QToolTip::hideText();
        else QToolTip::showText(e->globalPosition().toPoint(), text, m_plot);
    });
    applyFonts();
}

QString LedgerView::valueAt(const QPoint& pos) const {
    // The topmost segment first (stacked bars are added bottom to top).
    for (int i = m_plot->plottableCount() - 1; i >= 0; --i) {
        auto* bars = qobject_cast<QCPBars*>(m_plot->plottable(i));
        if (!bars) continue;
        QVariant details;
        if (bars->selectTest(pos, false, &details) < 0) continue;
        const QCPDataSelection hit = details.value<QCPDataSelection>();
        if (hit.isEmpty()) continue;
        const auto point = bars->data()->at(hit.dataRange().begin());
        const QString where = m_tickLabels.value(point->key, QString::number(point->key));
        const double share = m_ledger.total != 0 ? 100 * point->value / m_ledger.total : 0;
        return tr("%1, %2: %3 (%4% of %5)")
            .arg(where, bars->name())
            .arg(point->value, 0, 'g', 3)
            .arg(share, 0, 'f', 1)
            .arg(m_ledger.total, 0, 'g', 3);
    }
    return {};
}

bool LedgerView::eventFilter(QObject* watched, QEvent* event) {
    // After the plot's own resize handling (queued), so that its axis rect has the new width.
    if (watched == m_plot && event->type() == QEvent::Resize && !m_tickLabels.isEmpty())
        QMetaObject::invokeMethod(this, [this] { fitToWidth(); }, Qt::QueuedConnection);
    return QWidget::eventFilter(watched, event);
}

void LedgerView::fitToWidth() {
    if (m_tickLabels.isEmpty()) return;
    placeLegendBelow(m_plot, 6);
    m_plot->replot();  // lays out the axis rect at the legend's new height
    thinTickLabels(m_plot, m_tickLabels);
    m_plot->replot();
}

void LedgerView::setFontScale(double scale) {
    m_fontScale = scale;
    applyFonts();
    if (m_tickLabels.isEmpty()) m_plot->replot();
    else fitToWidth();
}

void LedgerView::applyFonts() {
    QFont f = font();
    f.setPointSizeF(f.pointSizeF() * m_fontScale);
    m_summary->setFont(f);
    for (QCPAxis* a : {m_plot->xAxis, m_plot->yAxis}) {
        a->setTickLabelFont(f);
        a->setLabelFont(f);
    }
    QFont legendFont = font();  // a little smaller than the ticks, as a paper's legend
    legendFont.setPointSizeF(font().pointSizeF() * 0.9 * m_fontScale);
    m_plot->legend->setFont(legendFont);
}

void LedgerView::clear() {
    m_ledger = {};
    m_tickLabels.clear();
    m_plot->clearPlottables();
    m_plot->replot();
    m_summary->setText(tr("Open an image and type a text"));
}

QString LedgerView::summaryText() const {
    return tr("score of \"%1\": model %2 = sum of %3 terms %4, residual %5")
        .arg(QString::fromStdString(m_ledger.text))
        .arg(m_ledger.total, 0, 'g', 6)
        .arg(m_ledger.rows.size())
        .arg(m_ledger.sumOfTerms, 0, 'g', 6)
        .arg(m_ledger.residual, 0, 'g', 2);
}

void LedgerView::setLedger(const Ledger& g, int heads) {
    m_ledger = g;
    m_summary->setText(summaryText());
    m_plot->clearPlottables();
    const int layers = static_cast<int>(g.layerTotals.size());
    // Keys: 0 = embedding + final biases, 1..L = layers.
    std::vector<std::vector<double>> headValues(static_cast<std::size_t>(heads), std::vector<double>(static_cast<std::size_t>(layers + 1), 0.0));
    std::vector<double> mlp(static_cast<std::size_t>(layers + 1), 0.0), bias(static_cast<std::size_t>(layers + 1), 0.0), other(static_cast<std::size_t>(layers + 1), 0.0);
    for (const LedgerRow& r : g.rows) {
        const std::size_t key = r.layer >= 0 ? static_cast<std::size_t>(r.layer + 1) : 0;
        if (r.head >= 0) headValues[static_cast<std::size_t>(r.head)][key] += r.score;
        else if (r.name.rfind("mlp.", 0) == 0) mlp[key] += r.score;
        else if (r.name.rfind("attn_bias", 0) == 0 && r.layer >= 0) bias[key] += r.score;
        else other[key] += r.score;
    }
    QVector<double> keys;
    for (int k = 0; k <= layers; ++k) keys << k;
    QCPBars* below = nullptr;
    auto addBars = [&](const QString& name, const std::vector<double>& v, const QColor& color) {
        auto* b = new QCPBars(m_plot->xAxis, m_plot->yAxis);
        b->setName(name);
        b->setData(keys, QVector<double>(v.begin(), v.end()));
        b->setBrush(color);
        b->setPen(QPen(color.darker(130)));
        b->setWidth(0.7);
        if (below) b->moveAbove(below);
        below = b;
    };
    addBars(tr("emb+bias"), other, QColor(150, 150, 150));
    for (int h = 0; h < heads; ++h)
        addBars(tr("h%1").arg(h), headValues[static_cast<std::size_t>(h)], colormapColor(ColormapKind::Viridis, heads > 1 ? h / double(heads - 1) : 0.5));
    addBars(tr("attn bias"), bias, QColor(230, 160, 60));
    addBars(tr("MLP"), mlp, QColor(200, 70, 70));
    m_tickLabels.clear();
    m_tickLabels.insert(0, tr("emb"));
    for (int l = 0; l < layers; ++l) m_tickLabels.insert(l + 1, QString("L%1").arg(l));
    QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
    ticker->setTicks(m_tickLabels);
    m_plot->xAxis->setTicker(ticker);
    m_plot->xAxis->setRange(-0.6, layers + 0.6);
    m_plot->yAxis->setLabel(tr("contribution to the score"));
    m_plot->legend->setVisible(heads <= 16);
    applyFonts();
    m_plot->rescaleAxes(true);
    // Stacked bars: the range must cover the running sums of positive and negative parts.
    double lo = 0, hi = 0;
    for (int k = 0; k <= layers; ++k) {
        double pos = std::max(0.0, other[static_cast<std::size_t>(k)]) + std::max(0.0, mlp[static_cast<std::size_t>(k)]) + std::max(0.0, bias[static_cast<std::size_t>(k)]);
        double neg = std::min(0.0, other[static_cast<std::size_t>(k)]) + std::min(0.0, mlp[static_cast<std::size_t>(k)]) + std::min(0.0, bias[static_cast<std::size_t>(k)]);
        for (int h = 0; h < heads; ++h) {
            pos += std::max(0.0, headValues[static_cast<std::size_t>(h)][static_cast<std::size_t>(k)]);
            neg += std::min(0.0, headValues[static_cast<std::size_t>(h)][static_cast<std::size_t>(k)]);
        }
        hi = std::max(hi, pos);
        lo = std::min(lo, neg);
    }
    const double pad = 0.08 * std::max(1e-9, hi - lo);
    m_plot->yAxis->setRange(lo - pad, hi + pad);
    m_plot->xAxis->setRange(-0.6, layers + 0.6);
    fitToWidth();
}

}  // namespace vitscope::ui
