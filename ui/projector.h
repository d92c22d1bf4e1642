#pragma once
// The projector: the open dataset's images laid out in 2-D (PCA, UMAP, t-SNE, or text axes),
// through the whole representation or the selected heads, coloured by the text's score. A click
// opens an image; a lasso (Select) picks images, listed under the plot with their thumbnails. The
// keyboard reaches every point too (projector_keys.cpp): arrows move a cursor from point to point,
// Space picks, Enter opens, Shift+arrows pan, +/- zoom.
#include "explore/explorer.h"
#include "head_grid.h"

#include <QFlags>
#include <QPolygonF>
#include <QStringList>
#include <QVector>
#include <QWidget>

class QComboBox;
class QCPCurve;
class QCPGraph;
class QCustomPlot;
class QLabel;
class QLineEdit;
class QListWidget;
class QPushButton;
class QVBoxLayout;

namespace vitscope::ui {

struct State;
enum class Aspect : quint32;
class Thumbnails;

class Projector : public QWidget {
    Q_OBJECT
public:
    explicit Projector(Thumbnails* thumbs, QWidget* parent = nullptr);
    void render(const State& s, QFlags<Aspect> changed);

    QCustomPlot* plot() const { return m_plot; }
    QListWidget* picked() const { return m_picked; }
    QString statusText() const;
    // Plot coordinates of a shown point (tests, synthetic clicks); false when there is none.
    bool pointPosition(int row, QPointF* pixel) const;
    QString hoverText(int row) const;  // the tooltip over a point: the image's thumbnail, name and colour value
    int highlighted() const;           // the picked points ringed in the plot
    int cursorRow() const { return m_cursor; }  // the keyboard's point; -1: none
    void setCursorShown(bool shown);             // figures leave the cursor out

signals:
    // method pca | umap | tsne | text-axes; the selected heads' summed terms instead of the whole
    // representation; text axes A, B, C, D.
    void layoutRequested(const QString& method, const QString& points, const QStringList& axes);  // points: whole | selected | heads
    void headActivated(const HeadId& head);  // heads as points: a click on one
    void imageActivated(const QString& path);
    void rowsPicked(const QVector<int>& rows);
    void colourRequested(const QString& column);  // a labels.csv column; "": the text's score

protected:
    bool eventFilter(QObject* watched, QEvent* e) override;  // the plot's keys

private:
    void requestLayout();
    void draw(const State& s);
    void showPicked(const State& s);
    void drawLasso();
    void pickInLasso();
    void buildPlot(QVBoxLayout* layout);
    void connectPlot();   // layout, colour, select, click and lasso
    void connectHover();  // tooltips, the picked strip's clicks and thumbnails; the points as pixels
    void paintPoints();
    void keepRows(const vitscope::ProjectionResult& r);  // each row's path, head and colour value (clicks, hover)   // many points: drawn as pixels into the axis rect's background
    // One scatter graph per colour bin of the scores (one graph when uncoloured).
    void addScatter(const vitscope::ProjectionResult& r, int bins, float lo, float hi);
    // One graph per value of the labels column (the 10 most frequent; the rest as "other"), in the legend.
    QString addCategories(const vitscope::ProjectionResult& r);
    void offerColumns(const State& s);
    void nameHeads(const vitscope::ProjectionResult& r);  // heads as points: each labelled with its name
    QString describe(const vitscope::ProjectionResult& r) const;  // the status line: what was laid out, how, in what time
    void labelAxes(const vitscope::ProjectionRequest& q);  // text axes titled and ticked; layouts on equal scales
    int nearestRow(const QPointF& pixel, double within) const;  // -1: none that near
    void activateRow(int row);  // as a click on it: a head in focus, an image opened
    // The keyboard (projector_keys.cpp): the cursor, picks, pan and zoom.
    bool handleKey(int key, Qt::KeyboardModifiers mods);
    int rowToward(int dx, int dy) const;  // the nearest point from the cursor in an arrow's direction
    void placeCursor(int row);
    void pickVisible();
    void zoomBy(double factor);
    int m_cursor = -1;
    QCPGraph* m_cursorGraph = nullptr;
    QVector<int> m_pickedRows;  // as the state has them (Space adds to or takes from them)
    // Pixel mode: the points' raster is kept while the view and the points are the same (a lasso
    // frame or a hover redraws the plot, not the points).
    quint64 m_pointsVersion = 0, m_paintedVersion = ~quint64(0);
    double m_paintedRange[4] = {0, 0, 0, 0};  // x lower, upper, y lower, upper
    QRect m_paintedRect;

    Thumbnails* m_thumbs;
    QComboBox* m_method;
    QComboBox* m_points;
    QComboBox* m_colour;
    QLineEdit* m_axes[4];
    QWidget* m_axesRow;
    QPushButton* m_layOut;
    QPushButton* m_select;
    QLabel* m_status;
    QCustomPlot* m_plot;
    QListWidget* m_picked;
    std::vector<float> m_x, m_y;       // shown, per row
    std::vector<float> m_drawnColor;   // what the shown plot was drawn from (render redraws only for another)
    std::vector<std::string> m_drawnLabels, m_drawnNames;
    std::string m_drawnColorText;
    QStringList m_paths;
    QStringList m_pointNames;  // heads as points: each point's head
    std::vector<QString> m_colourValues;  // per image: what colours it, in words (hover)
    QPointF m_pressed;
    bool m_raster = false;             // many points: drawn by paintPoints, not the graphs
    QPolygonF m_lasso;                 // the select drag's path, in pixels
    QCPCurve* m_lassoCurve = nullptr;  // drawn while dragging
    QCPGraph* m_pickedGraph = nullptr;  // the picked points, ringed (out of the legend)
    void ringPicked(const QVector<int>& rows);
    void fitLegend();  // the labels' legend in as many columns as the plot's height needs
};

}  // namespace vitscope::ui
