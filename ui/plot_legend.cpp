#include "plot_legend.h"

#include <qcustomplot.h>

#include <QFontMetrics>

#include <algorithm>

namespace vitscope::ui {

void placeLegendBelow(QCustomPlot* plot, int maxColumns) {
    QCPLegend* legend = plot->legend;
    if (plot->plotLayout()->rowCount() == 1) {
        plot->plotLayout()->addElement(1, 0, legend);
        plot->plotLayout()->setRowStretchFactor(1, 0.001);
        legend->setBorderPen(Qt::NoPen);
    }
    int widest = 1;
    int items = 0;
    for (int i = 0; i < legend->elementCount(); ++i)  // a wrapped grid has empty cells (null)
        if (QCPAbstractLegendItem* item = legend->item(i)) {
            widest = std::max(widest, item->minimumOuterSizeHint().width());
            ++items;
        }
    const QMargins m = legend->margins();
    const QMargins outer = plot->plotLayout()->margins();
    const int room = plot->width() - m.left() - m.right() - outer.left() - outer.right() - 2;
    const int fit = std::max(1, (room + legend->columnSpacing()) / (widest + legend->columnSpacing()));
    legend->setWrap(std::max(1, std::min({maxColumns, fit, std::max(1, items)})));
    legend->setFillOrder(QCPLayoutGrid::foColumnsFirst, true);  // re-lays the items out
}

int thinTickLabels(QCustomPlot* plot, const QMap<double, QString>& labels) {
    QCPAxis* axis = plot->xAxis;
    auto text = axis->ticker().dynamicCast<QCPAxisTickerText>();
    if (!text) return 1;
    const QFontMetrics fm(axis->tickLabelFont());
    int widest = 1;
    for (const QString& s : labels) widest = std::max(widest, fm.horizontalAdvance(s));
    const double span = axis->range().size();
    const double perKey = span > 0 ? axis->axisRect()->width() / span : 0;  // pixels between keys 1 apart
    int k = 1;
    while (k < labels.size() && perKey * k < widest + fm.horizontalAdvance(" ")) ++k;
    QMap<double, QString> shown;
    int i = 0;
    for (auto it = labels.begin(); it != labels.end(); ++it, ++i)
        if (i % k == 0) shown.insert(it.key(), it.value());
    text->setTicks(shown);
    return k;
}

}  // namespace vitscope::ui
