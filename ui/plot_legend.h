#pragma once
// Charts' legends below the plot, in rows, so that they never cover bars (ledger, ablation).
#include <QMap>
#include <QString>

class QCustomPlot;

namespace vitscope::ui {

// Moves the plot's legend into a row of its own under the axis rect (once), as many items per
// row as fit the plot's width whole (at most `maxColumns`, at least one). Call again when the
// plot's width or the legend's font changes.
void placeLegendBelow(QCustomPlot* plot, int maxColumns);

// Sets the x axis' text ticker to every k-th of `labels` (key -> text), the smallest k whose
// labels do not touch at the axis rect's current width (L0..L23 in a narrow dock). Returns k.
int thinTickLabels(QCustomPlot* plot, const QMap<double, QString>& labels);

}  // namespace vitscope::ui
