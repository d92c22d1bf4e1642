#pragma once
// The head panel's neuron tools under an MLP's neuron list: the order of the list (by effect on
// the open image, or by a property's score over the open dataset: the names the model offers),
// ticks on its rows, and "Retrieve through these neurons" (the ticked ones, else the neuron
// clicked) into the Retrieval dock. Renders from the session's NeuronToolsState.
#include <QFlags>
#include <QList>
#include <QWidget>

#include <vector>

class QComboBox;
class QListWidget;
class QPushButton;

namespace vitscope::ui {

// A row of the head panel's neuron list: the neuron and its line.
struct NeuronLine {
    qint64 neuron = -1;
    QString text;
    bool operator==(const NeuronLine& o) const { return neuron == o.neuron && text == o.text; }
};

struct State;
enum class Aspect : quint32;
class Session;

class NeuronTools : public QWidget {
    Q_OBJECT
public:
    // `list`: the head panel's neuron list, whose rows get ticks.
    explicit NeuronTools(QListWidget* list, QWidget* parent = nullptr);
    void render(const State& s, QFlags<Aspect> changed);
    // With a property chosen and its ranking (or the reason there is none) there: true, with the
    // list's heading and rows (none with a reason). False otherwise: the list stays the image's (the
    // head panel's), and `pending` says a ranking is on its way (""). Ticks either way (decorate).
    bool rankedRows(const State& s, QString* heading, std::vector<NeuronLine>* rows, QString* pending);
    void decorate(const State& s);  // the rows' ticks from the state
    // Its intents to the session's methods (the one line of wiring for it, Menus').
    void connectTo(Session* session);

    QComboBox* orderBox() const { return m_order; }
    QPushButton* retrieveButton() const { return m_retrieve; }

signals:
    void rankRequested(const QString& property);  // "": by effect on the image
    void ticksChanged(const QList<qint64>& neurons);
    void retrieveRequested();

private:
    void setProperties(const State& s);
    QList<qint64> ticked() const;

    QListWidget* m_list;
    QComboBox* m_order;
    QPushButton* m_retrieve;
    QList<qint64> m_ticks;  // the state's ticks of the focused MLP, as last decorated
    bool m_filling = false;
};

}  // namespace vitscope::ui
