#include "plot_legend.h"

#include <qcustomplot.h>

namespace vitscope::ui {

void placeLegendBelow(QCustomPlot* plot, int columns) {
    if (plot->plotLayout()->rowCount() == 1) {
        plot->plotLayout()->addElement(1, 0, plot->legend);
        plot->plotLayout()->setRowStretchFactor(1, 0.001);
        plot->legend->setBorderPen(Qt::NoPen);
    }
    plot->legend->setWrap(columns);
    plot->legend->setFillOrder(QCPLayoutGrid::foColumnsFirst, true);  // re-lays the items out
}

}  // namespace vitscope::ui
