#pragma once
// Ablation: tick heads to mean-ablate (means from a reference split); accuracy and per-group
// accuracy update at once (the outputs are re-summed from the cache). The shapes world's
// spurious split with its spurious model is the built-in demo.
#include "explore/explorer.h"

#include <QStringList>
#include <QWidget>

class QCustomPlot;
class QLabel;
class QListWidget;
class QPushButton;
class QSpinBox;
class QTableWidget;

namespace vitscope::ui {

class AblationPanel : public QWidget {
    Q_OBJECT
public:
    explicit AblationPanel(QWidget* parent = nullptr);
    void setHeads(int layers, int heads);
    void setTaskText(const QString& text);
    void setOutcome(const AblationOutcome& o);
    void setTicked(const QStringList& names);  // without emitting
    QStringList ticked() const;
    void setHeadTicked(const QString& name, bool on);  // emits ablationChanged
    const AblationOutcome& outcome() const { return m_outcome; }
    QCustomPlot* plot() const { return m_plot; }
    QString tableText() const;

signals:
    void demoRequested();
    void ablationChanged(const QStringList& heads);
    void discoverRequested(int k);

private:
    QPushButton* m_demo;
    QLabel* m_task;
    QListWidget* m_heads;
    QSpinBox* m_topK;
    QPushButton* m_discover;
    QPushButton* m_clear;
    QTableWidget* m_table;
    QCustomPlot* m_plot;
    AblationOutcome m_outcome;
    bool m_silent = false;
};

}  // namespace vitscope::ui
