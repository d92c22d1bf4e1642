#include "comparison_view.h"

#include "colormap.h"
#include "session.h"

#include <qcustomplot.h>

#include <QFileDialog>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QPushButton>
#include <QToolTip>
#include <QVBoxLayout>

#include <cmath>

namespace vitscope::ui {

ComparisonView::ComparisonView(QWidget* parent) : QWidget(parent) {
    auto* layout = new QVBoxLayout(this);
    auto* row = new QHBoxLayout;
    m_title = new QLabel(tr("Compare the open model's heads with another model's over the open dataset."));
    m_title->setWordWrap(true);
    auto* compare = new QPushButton(tr("Compare with a model..."));
    compare->setObjectName("compareButton");
    row->addWidget(m_title, 1);
    row->addWidget(compare);
    layout->addLayout(row);
    m_focus = new QLabel;
    m_focus->setObjectName("comparisonFocus");
    m_focus->setWordWrap(true);
    layout->addWidget(m_focus);
    auto* body = new QHBoxLayout;
    m_plot = new QCustomPlot;
    m_plot->setObjectName("comparisonPlot");
    m_plot->setMinimumHeight(160);
    body->addWidget(m_plot, 3);
    m_scale = new QCPColorScale(m_plot);
    m_scale->setLabel(tr("linear CKA"));
    m_scale->setDataRange(QCPRange(0, 1));
    m_plot->plotLayout()->addElement(0, 1, m_scale);
    m_scale->setVisible(false);
    m_pairs = new QListWidget;
    m_pairs->setObjectName("comparisonPairs");
    m_pairs->setToolTip(tr("The one-to-one assignment (Hungarian) maximising the summed CKA"));
    body->addWidget(m_pairs, 1);
    layout->addLayout(body, 1);
    // Every cell names its pair (the axes thin their labels to the room they have).
    connect(m_plot, &QCustomPlot::mouseMove, this, [this](QMouseEvent* e) {
        const int b = int(std::lround(m_plot->xAxis->pixelToCoord(e->position().x())));
        const int a = int(m_headsA.size()) - 1 - int(std::lround(m_plot->yAxis->pixelToCoord(e->position().y())));
        if (!m_map || a < 0 || b < 0 || a >= int(m_headsA.size()) || b >= int(m_headsB.size())) {
            QToolTip::hideText();
            return;
        }
        QToolTip::showText(e->globalPosition().toPoint(), cellText(a, b), m_plot);
    });
    connect(compare, &QPushButton::clicked, this, [this] {
        const QString dir = QFileDialog::getExistingDirectory(this, tr("Compare the heads with the model in..."));
        if (!dir.isEmpty()) emit compareRequested(dir);
    });
}

QString ComparisonView::focusText() const { return m_focus->text(); }
QString ComparisonView::titleText() const { return m_title->text(); }

QString ComparisonView::cellText(int a, int b) const {
    if (a < 0 || b < 0 || a >= int(m_headsA.size()) || b >= int(m_headsB.size())) return {};
    return tr("%1 (%2) vs %3 (%4): CKA %5")
        .arg(QString::fromStdString(m_headsA[std::size_t(a)]), m_modelA, QString::fromStdString(m_headsB[std::size_t(b)]), m_modelB)
        .arg(m_cka[std::size_t(a) * m_headsB.size() + std::size_t(b)], 0, 'f', 3);
}

void ComparisonView::render(const State& s, QFlags<Aspect> changed) {
    if (changed & (Aspect::Comparison | Aspect::Model)) draw(s);
    if (changed & (Aspect::Comparison | Aspect::Model | Aspect::Focus | Aspect::Selection)) showFocus(s);
}

void ComparisonView::draw(const State& s) {
    m_plot->clearPlottables();
    m_plot->clearItems();
    m_map = nullptr;
    m_pairs->clear();
    if (!s.comparison) {
        m_title->setText(s.comparing ? tr("comparing...") : tr("Compare the open model's heads with another model's over the open dataset."));
        clearAxes();
        showEmptyState(s.comparing);
        return;
    }
    const HeadComparison& c = *s.comparison;
    const int na = int(c.headsA.size()), nb = int(c.headsB.size());
    m_title->setText(tr("Linear CKA of every head pair over %1 images: rows %2, columns %3; outlined: the one-to-one assignment "
                        "(%3 stays open beside %2 in the Second model tab)")
                         .arg(c.images)
                         .arg(QString::fromStdString(c.modelA), QString::fromStdString(c.modelB)));
    m_map = new QCPColorMap(m_plot->xAxis, m_plot->yAxis);
    m_map->data()->setSize(nb, na);
    m_map->data()->setRange(QCPRange(0, nb - 1), QCPRange(0, na - 1));
    for (int a = 0; a < na; ++a)
        for (int b = 0; b < nb; ++b) m_map->data()->setCell(b, na - 1 - a, c.ckaAt(std::size_t(a), std::size_t(b)));  // first head on top
    QCPColorGradient viridis;
    viridis.clearColorStops();
    for (int i = 0; i <= 10; ++i) viridis.setColorStopAt(i / 10.0, colormapColor(ColormapKind::Viridis, i / 10.0));
    m_map->setGradient(viridis);
    m_map->setColorScale(m_scale);
    m_scale->setGradient(viridis);
    m_scale->setVisible(true);
    m_plot->xAxis->setVisible(true);
    m_plot->yAxis->setVisible(true);
    m_map->setDataRange(QCPRange(0, 1));
    m_map->setInterpolate(false);
    m_headsA = c.headsA;
    m_headsB = c.headsB;
    m_modelA = QString::fromStdString(c.modelA);
    m_modelB = QString::fromStdString(c.modelB);
    m_cka.assign(std::size_t(na) * std::size_t(nb), 0.0);
    for (int a = 0; a < na; ++a)
        for (int b = 0; b < nb; ++b) m_cka[std::size_t(a) * std::size_t(nb) + std::size_t(b)] = c.ckaAt(std::size_t(a), std::size_t(b));
    m_plot->xAxis->setLabel(QString::fromStdString(c.modelB));
    m_plot->yAxis->setLabel(QString::fromStdString(c.modelA));
    m_plot->xAxis->setRange(-0.5, nb - 0.5);
    m_plot->yAxis->setRange(-0.5, na - 0.5);
    retick();
    for (int a = 0; a < na; ++a) {
        const int b = c.assigned[std::size_t(a)];
        if (b < 0) continue;
        auto* box = new QCPItemRect(m_plot);
        // Inset a little, so that an outline on the matrix's edge is not cut by the axis rect.
        box->topLeft->setCoords(b - 0.45, na - 1 - a + 0.45);
        box->bottomRight->setCoords(b + 0.45, na - 1 - a - 0.45);
        box->setPen(QPen(Qt::white, 1.5));
        m_pairs->addItem(QString("%1 - %2  %3").arg(QString::fromStdString(c.headsA[std::size_t(a)]), QString::fromStdString(c.headsB[std::size_t(b)]))
                             .arg(c.ckaAt(std::size_t(a), std::size_t(b)), 0, 'f', 3));
    }
    m_plot->replot();
}

void ComparisonView::showEmptyState(bool comparing) {
    // What to do, not the axes of a matrix that is not there.
    auto* note = new QCPItemText(m_plot);
    note->position->setType(QCPItemPosition::ptAxisRectRatio);
    note->position->setCoords(0.5, 0.5);
    note->setText(comparing ? tr("Matching the heads over the open dataset...\nthe matrix follows when it is done.")
                            : tr("No comparison yet.\nClick \"Compare with a model...\" and choose a model's folder:\n"
                                 "every head pair's linear CKA over the open dataset appears here."));
    note->setColor(palette().placeholderText().color());
    m_plot->replot();
}

void ComparisonView::clearAxes() {
    m_scale->setVisible(false);
    m_headsA.clear();
    m_headsB.clear();
    for (QCPAxis* axis : {m_plot->xAxis, m_plot->yAxis}) {  // no model names or heads of a comparison not shown
        axis->setLabel(QString());
        axis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
        axis->setVisible(false);  // (nor 0-5 ticks of nothing)
    }
    m_plot->replot();
}

void ComparisonView::resizeEvent(QResizeEvent* e) {
    QWidget::resizeEvent(e);
    if (m_map) {
        retick();
        m_plot->replot();
    }
}

void ComparisonView::retick() {
    m_plot->replot();  // (the axis rect's size)
    const auto ticks = [](const std::vector<std::string>& names, bool reversed, int pixels, int perLabel) {
        QSharedPointer<QCPAxisTickerText> t(new QCPAxisTickerText);
        const int n = int(names.size());
        const int step = std::max(1, (n * perLabel + std::max(pixels, 1) - 1) / std::max(pixels, 1));
        for (int i = 0; i < n; i += step) t->addTick(reversed ? n - 1 - i : i, QString::fromStdString(names[std::size_t(i)]));
        return t;
    };
    const QFontMetrics fm(m_plot->yAxis->tickLabelFont());
    int widest = 0;
    for (const std::string& h : m_headsB) widest = std::max(widest, fm.horizontalAdvance(QString::fromStdString(h)));
    m_plot->xAxis->setTicker(ticks(m_headsB, false, m_plot->axisRect()->width(), widest + 8));
    m_plot->yAxis->setTicker(ticks(m_headsA, true, m_plot->axisRect()->height(), fm.height() + 2));
}

void ComparisonView::showFocus(const State& s) {
    if (!s.comparison || !s.focus.head.valid()) {
        m_focus->setText(s.comparison ? tr("Click a head in the grid for its matches in %1.").arg(QString::fromStdString(s.comparison->modelB)) : QString());
        return;
    }
    const HeadComparison& c = *s.comparison;
    const std::string name = s.focus.head.name().toStdString();
    const auto it = std::find(c.headsA.begin(), c.headsA.end(), name);
    if (it == c.headsA.end()) {
        m_focus->setText(tr("Head %1 is not among the compared heads.").arg(s.focus.head.name()));
        return;
    }
    const std::size_t a = std::size_t(it - c.headsA.begin());
    std::size_t best = 0;
    for (std::size_t b = 1; b < c.headsB.size(); ++b)
        if (c.ckaAt(a, b) > c.ckaAt(a, best)) best = b;
    const int assigned = c.assigned[a];
    m_focus->setText(tr("Head %1: best match in %2 is %3 (CKA %4)%5")
                         .arg(s.focus.head.name(), QString::fromStdString(c.modelB), QString::fromStdString(c.headsB[best]))
                         .arg(c.ckaAt(a, best), 0, 'f', 3)
                         .arg(assigned < 0 ? tr("; not assigned")
                                           : tr("; assigned %1 (CKA %2)").arg(QString::fromStdString(c.headsB[std::size_t(assigned)])).arg(c.ckaAt(a, std::size_t(assigned)), 0, 'f', 3)));
    for (int i = 0; i < m_pairs->count(); ++i)
        if (m_pairs->item(i)->text().startsWith(s.focus.head.name() + " - ")) m_pairs->setCurrentRow(i);
}

}  // namespace vitscope::ui
