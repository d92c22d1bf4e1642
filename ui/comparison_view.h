#pragma once
// Two models' heads side by side: the linear CKA of every head pair over the open dataset (rows:
// the open model's heads, columns: the other model's), the one-to-one assignment as outlined
// cells, and for the head in focus its best match and its assigned head.
#include <QFlags>
#include <QWidget>

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

signals:
    void compareRequested(const QString& modelFolder);  // "Compare with a model..." and a folder chosen

private:
    void draw(const State& s);
    void showFocus(const State& s);

    QLabel* m_title;
    QLabel* m_focus;
    QCustomPlot* m_plot;
    QCPColorMap* m_map = nullptr;
    QCPColorScale* m_scale = nullptr;
    QListWidget* m_pairs;
};

}  // namespace vitscope::ui
