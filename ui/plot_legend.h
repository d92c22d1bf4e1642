#pragma once
// Charts' legends below the plot, in rows, so that they never cover bars (ledger, ablation).
class QCustomPlot;

namespace vitscope::ui {

// Moves the plot's legend into a row of its own under the axis rect (once), `columns` items per row.
void placeLegendBelow(QCustomPlot* plot, int columns);

}  // namespace vitscope::ui
