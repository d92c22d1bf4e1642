#pragma once
// Ablation: tick heads to mean-ablate (means from a reference split); accuracy and per-group
// accuracy update at once (the outputs are re-summed from the cache). The shapes world's
// spurious split with its spurious model is the built-in demo.
#include "explore/explorer.h"

#include <QStringList>
#include <QWidget>

#include <vector>

class QCustomPlot;
class QGroupBox;
class QHBoxLayout;
class QLineEdit;
class QLabel;
class QListWidget;
class QPushButton;
class QSpinBox;
class QTableWidget;

namespace vitscope::ui {

struct State;
enum class Aspect : quint32;
class Session;

class AblationPanel : public QWidget {
    Q_OBJECT
public:
    explicit AblationPanel(QWidget* parent = nullptr);
    // The session's model (its heads), task, ticked heads and outcome.
    void render(const State& s, QFlags<Aspect> changed);
    void connectTo(Session* session);  // its demo, task, ablation and discovery requests
    QStringList ticked() const;
    void setHeadTicked(const QString& name, bool on);  // emits ablationChanged
    const AblationOutcome& outcome() const { return m_outcome; }
    QCustomPlot* plot() const { return m_plot; }
    QString tableText() const;
    // The task form: labels.csv, label column, classes file, group columns, reference images.
    void setTaskForm(const QString& labels, const QString& column, const QString& classes, const QString& groups, const QString& reference);
    QString labelsField() const;
    QStringList spuriousTexts() const;
    QStringList coreTexts() const;
    void requestTask();  // as the "Set task" button

signals:
    void demoRequested();
    void ablationChanged(const QStringList& heads);
    void discoverRequested(int k);
    void taskRequested(const QString& labels, const QString& column, const QString& classes, const QStringList& groups,
                       const QString& reference);

private:
    void setHeads(int layers, int heads, const std::vector<int>& headsPerLayer = {});  // Swin: heads of each layer
    void setTaskText(const QString& text);
    void setOutcome(const AblationOutcome& o);
    void clearOutcome(const QString& why);
    void setTicked(const QStringList& names);  // without emitting
    void setDiscoveryTexts(const QString& spurious, const QString& core);
    // The constructor's parts: the widgets of each area, then the connections.
    void buildHeadList();
    QHBoxLayout* buildHeadButtons();  // discover with its top-k, clear
    void buildResultViews();          // the table and the bar chart
    QGroupBox* buildTaskForm();
    QHBoxLayout* pathRow(QLineEdit*& edit, const QString& placeholder, bool folder);  // a path field with "..."
    void connectControls();
    // setOutcome's parts.
    void fillTable(const AblationOutcome& o);
    void plotBars(const AblationOutcome& o);
    AblationTask m_shownTask;  // the task the form was last filled from
    QPushButton* m_demo;
    QLabel* m_task;
    QListWidget* m_heads;
    QSpinBox* m_topK;
    QPushButton* m_discover;
    QPushButton* m_clear;
    QLineEdit* m_labels;
    QLineEdit* m_column;
    QLineEdit* m_classes;
    QLineEdit* m_groups;
    QLineEdit* m_reference;
    QLineEdit* m_spurious;
    QLineEdit* m_core;
    QTableWidget* m_table;
    QCustomPlot* m_plot;
    AblationOutcome m_outcome;
    bool m_silent = false;
};

}  // namespace vitscope::ui
