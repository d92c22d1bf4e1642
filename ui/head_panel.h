#pragma once
// The selected head: its TextSpan descriptions with the variance each explains (bar chart), its
// top images from the dataset, and "retrieve with this head".
#include "explore/explorer.h"
#include "neuron_tools.h"

#include <QStringList>
#include <QWidget>

class QCustomPlot;
class QLabel;
class QListWidget;
class QPushButton;

namespace vitscope::ui {

struct State;
struct Focus;
enum class Aspect : quint32;

class Thumbnails;

class HeadPanel : public QWidget {
    Q_OBJECT
public:
    explicit HeadPanel(Thumbnails* thumbs, QWidget* parent = nullptr);
    // The session's focus (a head or an MLP), its descriptions and top images.
    void render(const State& s, QFlags<Aspect> changed);
private:
    // `name` as shown ("3.1", "pool.h1"); empty: the description's, else "layer.head".
    void showHead(int layer, int head, const HeadDescription* description, const QString& name = {});
    void clear();  // back to "Click a head in the grid" (another model)
    // An MLP clicked in the grid: its name and what is known of it (no chart: TextSpan describes
    // heads); its top images follow with setTopImages. "Retrieve with this head" is off.
    void showMlp(const QString& name, const QString& detail);
    void setTopImages(const std::vector<Hit>& hits);
    // The focused MLP's neurons by second-order effect on the image (hidden for heads).
    // With a property chosen, the ranking over the dataset (NeuronTools); the rows ticked either way.
    void setNeurons(const State& s);
    // A neuron of the focused MLP: its texts as bars, its top images over the dataset.
    void showNeuron(const State& s);
    void imageNeuronRows(const State& s, QString* heading, std::vector<NeuronLine>* rows) const;
    // The list's rows: the same rows keep their items, ticks and scroll position.
    void fillNeuronList(const std::vector<NeuronLine>& rows, qint64 current);
    QString neuronDetailText(const NeuronDetail& d) const;
    QString neuronTitle(const State& s, qint64 neuron) const;
    // The title's minimum height: what each of `texts` needs at its width (growOnly: never less than now).
    void keepTitleRoom(const QStringList& texts, bool growOnly = false);
    // The chart in its place with a note in it instead of bars (axes hidden).
    void showPlotNote(const QString& note);
    // Horizontal bars, first on top (`values` may be negative), labelled by `texts`.
    void drawBars(const QStringList& texts, const QVector<double>& values, const QString& axisTitle, const QString& shortTitle);

public:
    QCustomPlot* plot() const { return m_plot; }
    QString titleText() const;  // the panel's title as plain text ("Head 3.1: 10 texts explain ...")
    int layer() const { return m_layer; }
    int head() const { return m_head; }
    int barCount() const;
    int imageCount() const;
    QListWidget* neuronList() const { return m_neurons; }
    NeuronTools* neuronTools() const { return m_tools; }
    QString neuronsText() const;  // the neuron list's heading
    QString imagesText() const;   // the top images' heading (a neuron's: what its summary is)
    // The chart's labels, value ticks and axis title fitted to the plot's current width (docks, exports).
    void fitToWidth();

signals:
    void retrieveRequested(int layer, int head);
    void imageActivated(const QString& path);
    void neuronActivated(qint64 neuron);  // a neuron of the list clicked or chosen with Enter

protected:
    bool eventFilter(QObject* watched, QEvent* event) override;

private:
    void reset();  // no head, no chart, no images, "Retrieve" off (the title is the caller's)

    Thumbnails* m_thumbs;
    QLabel* m_title;
    QCustomPlot* m_plot;
    QStringList m_pickTexts;  // the chart's labels in full, first pick first
    QLabel* m_imagesLabel;
    QListWidget* m_images;
    QLabel* m_neuronsLabel;
    QListWidget* m_neurons;
    NeuronTools* m_tools;
    QPushButton* m_retrieve;
    int m_layer = -1, m_head = -1;
    QString m_shownSubject;  // the head or MLP the chart was last drawn for
    QString m_axisTitle, m_axisShort;  // the chart's value axis title, and a shorter one for narrow charts
};

}  // namespace vitscope::ui
