#pragma once
// The layer x head grid: one cell per head colored by a metric, a column of MLP values beside it,
// a colorbar below. Hover shows the head's top description; click selects, ctrl-click toggles,
// shift-click extends a rectangle from the last click; a layer's label selects the whole layer.
#include "colormap.h"

#include <QPoint>
#include <QSet>
#include <QString>
#include <QStringList>
#include <QWidget>

#include <vector>

class QPainter;

namespace vitscope::ui {

struct State;
enum class Aspect : quint32;

struct HeadId {
    int layer = -1, head = -1;
    bool pool = false;  // SigLIP: a pooling head (the grid's last row, layer = the encoder's depth)
    bool operator==(const HeadId& o) const { return layer == o.layer && head == o.head; }
    QString name() const { return pool ? QString("pool.h%1").arg(head) : QString("%1.%2").arg(layer).arg(head); }
    bool valid() const { return layer >= 0 && head >= 0; }
};
// A grid cell's head: row `encoderLayers` of a grid with a pooling row holds the pooling heads.
inline HeadId gridHead(int layer, int head, int encoderLayers, bool poolRow) {
    return {layer, head, poolRow && layer == encoderLayers};
}
// A projector point's head from its name, "3.1" or "3.1 #2" (its second direction); invalid otherwise.
inline HeadId pointHead(const QString& pointName) {
    const QStringList lh = pointName.section(' ', 0, 0).split('.');
    bool okLayer = false, okHead = false;
    const HeadId h{lh.size() == 2 ? lh[0].toInt(&okLayer) : -1, lh.size() == 2 ? lh[1].toInt(&okHead) : -1};
    return okLayer && okHead ? h : HeadId{};
}
inline size_t qHash(const HeadId& h, size_t seed = 0) { return ::qHash(h.layer * 4096 + h.head, seed); }

class HeadGrid : public QWidget {
    Q_OBJECT
public:
    explicit HeadGrid(QWidget* parent = nullptr);
    // The session's model (rows, heads, side columns), descriptions (tooltips), metric values and selection.
    void render(const State& s, QFlags<Aspect> changed);

    // `layers` rows of `heads` cells; with poolRow the last row is SigLIP's pooling heads ("pool").
    void setShape(int layers, int heads, bool poolRow = false);
    // Swin: heads of each row (fewer in early stages; the other cells stay empty) and each row's
    // label ("s2.b3"; rows of one stage form a band). Call after setShape; empty lists: uniform.
    void setRows(const std::vector<int>& headsPerRow, const QStringList& labels);
    int headsIn(int layer) const;
    QString rowLabel(int layer) const;
    bool poolRow() const { return m_poolRow; }
    // MaxViT: a second column after the MLP's ("MBConv"), one value per row (NaN: an empty cell,
    // as for the grid rows of a block's second attention unit). An empty title removes it.
    void setSideColumn(const QString& title);
    QRect sideRect(int layer) const;  // the side column's cell of a row; empty without the column
    QRect mlpRect(int layer) const;   // the MLP column's cell of a row
    int mlpRowAt(const QPoint& pos) const;  // the row of the MLP cell under `pos`, -1 off the column
    void setColormap(ColormapKind kind);
    void setFontScale(double scale);  // classroom mode
    QString mlpName(int row) const;   // the MLP of a row: "mlp.L", SigLIP's pooling row "pool.mlp"
    // Figures draw the grid without the selection's outline (an interaction state, not data).
    void setSelectionShown(bool shown);

    QList<HeadId> selection() const;
    void setSelection(const QList<HeadId>& heads);
    QString metricName() const { return m_metric; }
    int layers() const { return m_layers; }
    int heads() const { return m_heads; }
    QRect cellRect(int layer, int head) const;
    float value(int layer, int head) const;

    QSize sizeHint() const override;
    QSize minimumSizeHint() const override;

signals:
    void selectionChanged(const QList<HeadId>& heads);
    void headActivated(const HeadId& head);  // the head clicked last
    void mlpActivated(int row);  // an MLP cell clicked (mlpName(row) names it)

protected:
    void paintEvent(QPaintEvent*) override;
    void mousePressEvent(QMouseEvent* e) override;
    void keyPressEvent(QKeyEvent* e) override;  // arrows move the selection to the neighbouring head
    bool event(QEvent* e) override;

private:
    // values [layers x heads] row-major; mlp [layers] (may be empty). An empty metric clears.
    void setMetric(const QString& name, const std::vector<float>& values, const std::vector<float>& mlp,
                   const std::vector<float>& side = {});
    void setDescriptions(const QStringList& perHead);  // layer-major; tooltips
    HeadId headAt(const QPoint& p) const;
    QRect gridArea() const;
    int labelBand() const;  // room for the row / column labels, scaled with the font
    int barBand() const;    // room for the colorbar, its range and the metric's name

    // paintEvent's parts, in drawing order (the painter's font is the scaled one).
    struct ValueScale {  // the finite values' range over heads, MLP and side column
        float lo = 0, hi = 0;
        bool any = false;  // any finite value at all
    };
    ValueScale valueScale() const;
    void paintCells(QPainter& p, const ValueScale& scale) const;  // heads, MLP and side columns
    void paintColumnLabels(QPainter& p) const;                    // head numbers, "MLP", the side title
    void paintRowLabels(QPainter& p) const;
    void paintRowRules(QPainter& p) const;  // Swin's stage rules, the pooling row's rule
    void paintSelection(QPainter& p) const;
    void paintColorbar(QPainter& p, const ValueScale& scale) const;  // with its range and the metric's name

    int m_layers = 0, m_heads = 0;
    bool m_poolRow = false;
    std::vector<int> m_rowHeads;
    QStringList m_rowLabels;
    QString m_metric;
    std::vector<float> m_values, m_mlp, m_side;
    QString m_sideTitle;
    QStringList m_descriptions;
    QList<HeadId> m_selected;
    bool m_showSelection = true;
    HeadId m_anchor;
    ColormapKind m_colormap = ColormapKind::Viridis;
    double m_fontScale = 1.0;
};

}  // namespace vitscope::ui
