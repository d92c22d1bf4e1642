#pragma once
// The completeness ledger: the current image's score for the current text broken into layers
// (a stacked bar per layer: its heads, attention bias and MLP), the embedding and biases, with
// the model's actual score and the residual of the sum.
#include "explore/explorer.h"

#include <QMap>
#include <QWidget>

class QCustomPlot;
class QLabel;

namespace vitscope::ui {

struct State;
enum class Aspect : quint32;

class LedgerView : public QWidget {
    Q_OBJECT
public:
    explicit LedgerView(QWidget* parent = nullptr);
    void render(const State& s, QFlags<Aspect> changed);  // the session's ledger
    QCustomPlot* plot() const { return m_plot; }
    const Ledger& ledger() const { return m_ledger; }
    QString summaryText() const;
    // Classroom mode: every text of the chart (ticks, axis title, legend) and the summary scaled.
    void setFontScale(double scale);

    // What the bar under `pos` (plot coordinates) is worth, e.g. "L3, h1: 0.412 (8.8% of 4.69)";
    // empty off the bars. The chart's tooltip while the mouse moves.
    QString valueAt(const QPoint& pos) const;

    // The chart's labels, legend and ticks fitted to the plot's current width (docks, exports).
    void fitToWidth();

protected:
    bool eventFilter(QObject* watched, QEvent* event) override;

private:
    void setLedger(const Ledger& ledger, int heads);
    void clear();
    void applyFonts();

    QCustomPlot* m_plot;
    QLabel* m_summary;
    Ledger m_ledger;
    double m_fontScale = 1.0;
    QMap<double, QString> m_tickLabels;
};

}  // namespace vitscope::ui
