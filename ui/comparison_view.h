#pragma once
// Two models' heads side by side: the linear CKA of every head pair over the open dataset (rows:
// the open model's heads, columns: the other model's), the one-to-one assignment as outlined
// cells, and for the head in focus its best match and its assigned head.
#include <QFlags>
#include <QWidget>

#include <string>
#include <vector>

class QCustomPlot;
class QCPColorMap;
class QCPColorScale;
class QLabel;
class QListWidget;

namespace vitscope::ui {

struct State;
enum class Aspect : quint32;

class ComparisonView : public QWidget {
    Q_OBJECT
public:
    explicit ComparisonView(QWidget* parent = nullptr);
    void render(const State& s, QFlags<Aspect> changed);
    QCustomPlot* plot() const { return m_plot; }
    QListWidget* pairs() const { return m_pairs; }
    QString focusText() const;
    QString titleText() const;  // what the matrix shows (figure headings)
    QString cellText(int row, int column) const;  // a cell's pair and CKA (its tooltip); "" outside

signals:
    void compareRequested(const QString& modelFolder);  // "Compare with a model..." and a folder chosen

protected:
    void resizeEvent(QResizeEvent* e) override;

private:
    void draw(const State& s);
    void retick();  // head labels as many as the axes have room for
    void clearAxes();  // no comparison: no model names, no heads
    void showEmptyState(bool comparing);  // a note of what to do in the plot's place
    void showFocus(const State& s);

    QLabel* m_title;
    QLabel* m_focus;
    QCustomPlot* m_plot;
    QCPColorMap* m_map = nullptr;
    QCPColorScale* m_scale = nullptr;
    QListWidget* m_pairs;
    std::vector<std::string> m_headsA, m_headsB;  // the matrix's rows and columns
    QString m_modelA, m_modelB;
    std::vector<double> m_cka;  // rows x columns
};

}  // namespace vitscope::ui
