#include "head_panel.h"

#include "neuron_tools.h"
#include "session.h"

#include <cmath>

#include <QFileInfo>
#include <QTextDocument>

#include "thumbnails.h"

#include <qcustomplot.h>

#include <QFontDatabase>
#include <QLabel>
#include <QListWidget>
#include <QPushButton>
#include <QScrollBar>
#include <QSignalBlocker>
#include <QVBoxLayout>

namespace vitscope::ui {

HeadPanel::HeadPanel(Thumbnails* thumbs, QWidget* parent) : QWidget(parent), m_thumbs(thumbs) {
    auto* layout = new QVBoxLayout(this);
    m_title = new QLabel(tr("Click a head in the grid"));
    m_title->setObjectName("headTitle");
    m_title->setWordWrap(true);
    m_plot = new QCustomPlot;
    m_plot->setMinimumHeight(170);
    m_plot->setObjectName("headPlot");
    m_plot->installEventFilter(this);
    m_images = new QListWidget;
    m_images->setViewMode(QListView::IconMode);
    m_images->setIconSize({64, 64});
    m_images->setResizeMode(QListView::Adjust);
    m_images->setGridSize(QSize(78, 90));
    m_images->setUniformItemSizes(true);
    m_images->setMinimumHeight(90);
    m_neuronsLabel = new QLabel;
    m_neuronsLabel->setObjectName("neuronsLabel");
    m_neuronsLabel->setWordWrap(true);
    m_neurons = new QListWidget;
    m_neurons->setObjectName("neuronList");
    m_neurons->setMinimumHeight(80);
    m_neurons->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));  // the columns line up
    m_neurons->setMaximumHeight(QFontMetrics(m_neurons->font()).lineSpacing() * 7 + 8);  // the top images keep room below
    m_neuronsLabel->hide();
    m_neurons->hide();
    m_tools = new NeuronTools(m_neurons);
    m_tools->hide();
    m_retrieve = new QPushButton(tr("Retrieve with this head"));
    m_retrieve->setEnabled(false);
    layout->addWidget(m_title);
    layout->addWidget(m_plot, 2);
    layout->addWidget(m_neuronsLabel);
    layout->addWidget(m_tools);
    layout->addWidget(m_neurons, 1);
    m_imagesLabel = new QLabel(tr("Top images"));
    m_imagesLabel->setObjectName("topImagesLabel");
    m_imagesLabel->setWordWrap(true);
    // Two lines, whatever it says (a neuron's summary arriving must not move anything: the dock's
    // scroll bar coming or going would reflow the list above); the whole story is its tooltip.
    m_imagesLabel->setFixedHeight(2 * m_imagesLabel->fontMetrics().lineSpacing() + 4);
    layout->addWidget(m_imagesLabel);
    layout->addWidget(m_images, 1);
    layout->addWidget(m_retrieve);
    connect(m_retrieve, &QPushButton::clicked, this, [this] { emit retrieveRequested(m_layer, m_head); });
    connect(m_images, &QListWidget::itemActivated, this, [this](QListWidgetItem* it) { emit imageActivated(it->data(Qt::UserRole).toString()); });
    connect(m_images, &QListWidget::itemClicked, this, [this](QListWidgetItem* it) { emit imageActivated(it->data(Qt::UserRole).toString()); });
    for (auto signal : {&QListWidget::itemClicked, &QListWidget::itemActivated})
        connect(m_neurons, signal, this, [this](QListWidgetItem* it) { emit neuronActivated(it->data(Qt::UserRole).toLongLong()); });
    connect(m_thumbs, &Thumbnails::ready, this, [this](const QString& path, const QImage& img) {
        for (int i = 0; i < m_images->count(); ++i)
            if (m_images->item(i)->data(Qt::UserRole).toString() == path) m_images->item(i)->setIcon(QPixmap::fromImage(img));
    });
}

void HeadPanel::showMlp(const QString& name, const QString& detail) {
    reset();
    m_title->setText(tr("<b>%1</b>: %2").arg(name.toHtmlEscaped(), detail.toHtmlEscaped()));
}

QString HeadPanel::titleText() const {
    QTextDocument doc;
    doc.setHtml(m_title->text());
    return doc.toPlainText().simplified();
}

void HeadPanel::reset() {
    m_layer = m_head = -1;
    m_retrieve->setEnabled(false);
    m_plot->clearPlottables();
    m_plot->clearItems();
    m_pickTexts.clear();
    m_plot->setToolTip({});
    m_plot->replot();
    m_plot->hide();  // nothing shown = nothing drawn (no axis of another head's texts)
    m_images->clear();
    m_imagesLabel->setText(tr("Top images"));
    m_imagesLabel->setToolTip({});
    m_neurons->clear();
    m_neuronsLabel->hide();
    m_neurons->hide();
}

QString HeadPanel::neuronsText() const { return m_neuronsLabel->text(); }
QString HeadPanel::imagesText() const {
    return m_imagesLabel->text() + " " + m_imagesLabel->toolTip();
}

// The image's rows: the MLP's neurons by second-order effect on the open image (none while they compute).
void HeadPanel::imageNeuronRows(const State& s, QString* heading, std::vector<NeuronLine>* rows) const {
    const NeuronList& n = s.focus.neurons;
    if (n.layer != s.focus.mlpRow) {
        *heading = tr("Neurons: computing their second-order effects on this image...");
        return;
    }
    if (!n.unavailable.empty()) {
        *heading = tr("Neurons: %1.").arg(QString::fromStdString(n.unavailable));
        return;
    }
    const bool scored = !n.rows.empty() && std::isfinite(n.rows.front().textScore);
    *heading = scored ? tr("Its %1 neurons by second-order effect on this image (|effect|, score for \"%2\"):")
                            .arg(n.neurons)
                            .arg(QString::fromStdString(n.text))
                      : tr("Its %1 neurons by second-order effect on this image (|effect|):").arg(n.neurons);
    m_neurons->setToolTip(tr("Neuron, the size of its effect on the output through the later attention heads and (with a CLIP "
                             "model) its score for the text, in units of 100 / |output| (second_order_lens's convention)"));
    for (const NeuronRow& r : n.rows)
        rows->push_back(
            {r.neuron, scored ? QString("%1 %2 %3").arg(r.neuron, 6).arg(r.norm, 8, 'f', 2).arg(r.textScore, 9, 'f', 3)
                              : QString("%1 %2").arg(r.neuron, 6).arg(r.norm, 8, 'f', 2)});
}

void HeadPanel::fillNeuronList(const std::vector<NeuronLine>& rows, qint64 current) {
    // The same rows stay the same items (a result streaming in, a tick): no refill, no scroll.
    bool same = int(rows.size()) == m_neurons->count();
    for (int i = 0; same && i < m_neurons->count(); ++i)
        same = m_neurons->item(i)->data(Qt::UserRole).toLongLong() == rows[std::size_t(i)].neuron &&
               m_neurons->item(i)->text() == rows[std::size_t(i)].text;
    const QSignalBlocker block(m_neurons);  // filling is not ticking (itemChanged)
    if (!same) {
        m_neurons->clear();
        for (const NeuronLine& r : rows) {
            auto* item = new QListWidgetItem(r.text, m_neurons);
            item->setData(Qt::UserRole, static_cast<qlonglong>(r.neuron));
        }
    }
    const int scroll = m_neurons->verticalScrollBar()->value();
    QListWidgetItem* now = nullptr;
    for (int i = 0; i < m_neurons->count(); ++i)
        if (m_neurons->item(i)->data(Qt::UserRole).toLongLong() == current) now = m_neurons->item(i);
    if (m_neurons->currentItem() != now) m_neurons->setCurrentItem(now);
    if (same) m_neurons->verticalScrollBar()->setValue(scroll);  // (setCurrentItem scrolls to it)
}

void HeadPanel::setNeurons(const State& s) {
    const Focus& f = s.focus;
    m_neuronsLabel->setVisible(!f.mlp.isEmpty());
    if (f.mlp.isEmpty()) {
        const QSignalBlocker block(m_neurons);
        m_neurons->clear();
        m_neurons->setVisible(false);
        return;
    }
    QString heading, pending;
    std::vector<NeuronLine> rows;
    if (!m_tools->rankedRows(s, &heading, &rows, &pending)) imageNeuronRows(s, &heading, &rows);
    // A ranking on its way changes nothing above the list (the status line shows its progress).
    m_neuronsLabel->setText(heading);
    m_neuronsLabel->setToolTip(pending);
    if (f.neuron < 0) {  // the chart's place is kept for the neuron a click opens (the list does not move)
        if (f.neurons.unavailable.empty())
            showPlotNote(tr("a neuron's texts: click it in the list below"));
        else
            m_plot->hide();
    }
    fillNeuronList(rows, f.neuron);
    m_tools->decorate(s);
    m_neurons->setVisible(!rows.empty());
}

void HeadPanel::clear() {
    reset();
    m_title->setMinimumHeight(0);
    m_title->setText(tr("Click a head in the grid"));
}

bool HeadPanel::eventFilter(QObject* watched, QEvent* event) {
    if (watched == m_plot && event->type() == QEvent::Resize && !m_pickTexts.isEmpty())
        QMetaObject::invokeMethod(this, [this] { fitToWidth(); }, Qt::QueuedConnection);
    return QWidget::eventFilter(watched, event);
}

void HeadPanel::fitToWidth() {
    auto ticker = m_plot->yAxis->ticker().dynamicCast<QCPAxisTickerText>();
    if (!ticker || m_pickTexts.isEmpty()) return;
    // Texts take at most 40% of the chart (elided; the chart's tooltip lists them whole); the bars
    // keep the rest, with as many value ticks as fit and an axis title that fits under them.
    const QFontMetrics fm(m_plot->yAxis->tickLabelFont());
    const int room = std::max(30, m_plot->width() * 2 / 5 - 16);  // the axis' padding beside them
    const int n = static_cast<int>(m_pickTexts.size());
    QMap<double, QString> ticks;
    for (int i = 0; i < n; ++i) ticks.insert(n - i, fm.elidedText(m_pickTexts[i], Qt::ElideRight, room));
    ticker->setTicks(ticks);
    m_plot->replot();
    const int barsWidth = m_plot->axisRect()->width();
    m_plot->xAxis->ticker()->setTickCount(std::max(2, std::min(5, barsWidth / (fm.horizontalAdvance("100") * 2))));
    const QFontMetrics lf(m_plot->xAxis->labelFont());
    QString title = m_axisTitle;
    if (lf.horizontalAdvance(title) > barsWidth) title = m_axisShort;
    if (lf.horizontalAdvance(title) > barsWidth) title = m_axisShort.section(' ', -1);
    m_plot->xAxis->setLabel(title);
    m_plot->replot();
}

void HeadPanel::showHead(int layer, int head, const HeadDescription* d, const QString& name) {
    m_title->setMinimumHeight(0);  // (an MLP's room is not a head's)
    const QString label = !name.isEmpty() ? name : d ? QString::fromStdString(d->head) : QString("%1.%2").arg(layer).arg(head);
    m_layer = layer;
    m_head = head;
    m_retrieve->setEnabled(layer >= 0);
    m_plot->clearPlottables();
    m_plot->clearItems();
    if (!d || d->picks.empty()) {
        m_title->setText(tr("<b>Head %1</b><br>No descriptions yet (Analysis > Describe heads).").arg(label));
        m_pickTexts.clear();
        m_plot->setToolTip({});
        m_plot->hide();
        return;
    }
    m_plot->show();
    const double total = d->picks.back().cumulative;
    const QString projection = d->rank > 0 ? tr("texts projected on the head's top %1 singular directions").arg(d->rank)
                                            : tr("texts not projected (the reference's SigLIP setting)");
    m_title->setText(tr("<b>Head %1</b>: %2 texts explain %3% of its variance<br><small>TextSpan on %4-convention terms, %5</small>")
                         .arg(label)
                         .arg(d->picks.size())
                         .arg(100 * total, 0, 'f', 1)
                         .arg(QString::fromStdString(d->convention), projection));
    QStringList texts;
    QVector<double> values;
    for (const auto& pick : d->picks) {
        texts << QString::fromStdString(pick.text);
        values << 100 * pick.explained;
    }
    drawBars(texts, values, tr("variance explained (%)"), tr("variance (%)"));
}

void HeadPanel::drawBars(const QStringList& texts, const QVector<double>& values, const QString& axisTitle, const QString& shortTitle) {
    m_plot->clearPlottables();
    m_plot->clearItems();
    m_plot->xAxis->setVisible(true);
    m_plot->yAxis->setVisible(true);
    m_plot->show();
    auto* bars = new QCPBars(m_plot->yAxis, m_plot->xAxis);  // horizontal bars
    bars->setName(axisTitle);
    bars->setBrush(QColor(59, 82, 139));
    bars->setPen(Qt::NoPen);
    QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
    QVector<double> keys;
    const int n = static_cast<int>(texts.size());
    m_pickTexts = texts;
    for (int i = 0; i < n; ++i) {
        keys << n - i;  // first on top
        ticker->addTick(n - i, texts[i]);
    }
    bars->setData(keys, values);
    QStringList tip;
    for (int i = 0; i < n; ++i) tip << QString("%1  %2").arg(texts[i]).arg(values[i], 0, 'g', 3);
    m_plot->setToolTip(tip.join('\n'));
    m_plot->yAxis->setTicker(ticker);
    m_plot->yAxis->setRange(0.3, n + 0.7);
    m_axisTitle = axisTitle;
    m_axisShort = shortTitle;
    m_plot->xAxis->setLabel(axisTitle);
    double lo = 0, hi = 0;
    for (double v : values) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
    }
    if (hi - lo <= 0) hi = 1;  // (no bars, or all zero)
    m_plot->xAxis->setRange(lo * 1.15, hi * 1.15);
    fitToWidth();
}

// What the title says of a neuron's dataset detail `d` (arrived or not).
QString HeadPanel::neuronDetailText(const NeuronDetail& d) const {
    QString detail = tr("over the dataset's %1 images, the principal direction of its effects on its top %2")
                         .arg(d.images)
                         .arg(std::min<int64_t>(d.topK, d.images));
    if (!d.texts.empty() || d.textsUnavailable.empty())
        detail += tr(", as texts of %1 (orthogonal matching pursuit, coefficients)")
                      .arg(QFileInfo(QString::fromStdString(d.pool)).fileName());
    else
        detail += tr("; no texts: %1").arg(QString::fromStdString(d.textsUnavailable));
    return detail + tr("; below, those images, largest effect first.");
}

QString HeadPanel::neuronTitle(const State& s, qint64 neuron) const {
    const QString name = tr("%1, neuron %2").arg(s.mlpLabel(s.focus.mlpRow)).arg(neuron);
    return tr("<b>%1</b>: its activation on the canvas; over the dataset, its texts above and its top images below")
        .arg(name.toHtmlEscaped());
}

void HeadPanel::keepTitleRoom(const QStringList& texts, bool growOnly) {
    // The title's height is enough for each of `texts` at its width: an MLP's title keeps the room
    // its neurons' titles need, so a click on a neuron moves nothing under it.
    const int width = m_title->width();
    if (width < 50) {  // not laid out yet
        m_title->setMinimumHeight(0);
        return;
    }
    QLabel probe;
    probe.setFont(m_title->font());
    probe.setWordWrap(true);
    int need = growOnly ? m_title->minimumHeight() : 0;
    for (const QString& t : texts) {
        probe.setText(t);
        need = std::max(need, probe.heightForWidth(width));
    }
    m_title->setMinimumHeight(need);
}

void HeadPanel::showNeuron(const State& s) {
    const Focus& f = s.focus;
    m_layer = m_head = -1;
    m_retrieve->setEnabled(false);
    // Nothing above the list changes when the layer's summary arrives: the title is the same, the
    // chart keeps its place (a note in it until then), what the summary says goes under the list.
    m_title->setText(neuronTitle(s, f.neuron));
    keepTitleRoom({m_title->text()}, true);
    const NeuronDetail& d = f.detail;
    if (d.neuron != f.neuron || d.layer != f.mlpRow) {
        const QString why =
            !f.detailNote.isEmpty() ? f.detailNote : tr("summarising the layer's neurons over the dataset...");
        showPlotNote(f.detailNote.isEmpty() ? tr("its texts: when the summary is done") : tr("no texts"));
        m_imagesLabel->setText(tr("Top images: %1").arg(why));
        m_imagesLabel->setToolTip({});
        setTopImages({});
        return;
    }
    if (d.texts.empty()) {
        showPlotNote(tr("no texts: %1").arg(QString::fromStdString(d.textsUnavailable)));
    } else {
        QStringList texts;
        QVector<double> values;
        for (const WeightedText& t : d.texts) {
            texts << QString::fromStdString(t.text);
            values << t.weight;
        }
        drawBars(texts, values, tr("coefficient in its direction"), tr("coefficient"));
    }
    m_imagesLabel->setText(tr("Top images: its largest centred effects over the dataset's %1 images%2 (hover: how)")
                               .arg(d.images)
                               .arg(d.texts.empty() ? tr("; no texts") : QString()));
    m_imagesLabel->setToolTip(neuronDetailText(d));
    setTopImages(d.topImages);
}

void HeadPanel::showPlotNote(const QString& note) {
    m_plot->clearPlottables();
    m_plot->clearItems();
    m_pickTexts.clear();
    m_plot->setToolTip({});
    m_plot->xAxis->setVisible(false);
    m_plot->yAxis->setVisible(false);
    auto* text = new QCPItemText(m_plot);
    text->position->setType(QCPItemPosition::ptViewportRatio);  // the plot's middle, whatever its margins
    text->position->setCoords(0.5, 0.5);
    text->setClipToAxisRect(false);
    // Wrapped to the plot's width (a note is never cut).
    const QFontMetrics fm(text->font());
    QStringList lines{QString()};
    for (const QString& word : note.split(' ', Qt::SkipEmptyParts)) {
        const QString longer = lines.back().isEmpty() ? word : lines.back() + ' ' + word;
        if (!lines.back().isEmpty() && fm.horizontalAdvance(longer) > m_plot->width() - 16)
            lines << word;
        else
            lines.back() = longer;
    }
    text->setText(lines.join('\n'));
    text->setColor(palette().placeholderText().color());
    m_plot->show();
    m_plot->replot();
}

void HeadPanel::setTopImages(const std::vector<Hit>& hits) {
    m_images->clear();
    for (const Hit& h : hits) {
        const QString path = QString::fromStdString(h.path);
        auto* item = new QListWidgetItem(QString::number(h.score, 'g', 3));
        item->setData(Qt::UserRole, path);
        item->setToolTip(path);
        const QImage img = m_thumbs->get(path);
        // A placeholder of the icon's size until the thumbnail arrives: with uniform item sizes the
        // first item sizes them all, and an icon-less first item made every cell a thin strip.
        item->setIcon(img.isNull() ? thumbnailPlaceholder(m_images->iconSize()) : QPixmap::fromImage(img));
        m_images->addItem(item);
    }
}

int HeadPanel::barCount() const { return m_plot->plottableCount(); }
int HeadPanel::imageCount() const { return m_images->count(); }

void HeadPanel::render(const State& s, QFlags<Aspect> changed) {
    if (changed & (Aspect::Focus | Aspect::Model | Aspect::Neurons)) m_tools->render(s, changed);
    if (!(changed &
          (Aspect::Focus | Aspect::Descriptions | Aspect::Model | Aspect::Dataset | Aspect::Image | Aspect::Neurons)))
        return;
    const Focus& f = s.focus;
    if (f.empty()) {
        m_shownSubject.clear();
        clear();
        return;
    }
    // The same subject with its texts as drawn: a new image matters to an MLP's line only, top
    // images arriving to the list only; the chart stays (redrawing it cost a dropped image ~4 ms).
    if (f.neuron >= 0) {  // redrawn with every change of the focus: its detail arrives later
        m_shownSubject = QString("%1/%2").arg(f.mlp).arg(f.neuron);
        showNeuron(s);
        setNeurons(s);
        return;
    }
    const QString subject = f.mlp.isEmpty() ? f.head.name() : f.mlp;
    const bool sameTexts = subject == m_shownSubject && !(changed & (Aspect::Descriptions | Aspect::Model | Aspect::Dataset));
    if (sameTexts && (!(changed & Aspect::Image) || f.mlp.isEmpty())) {
        if (changed & Aspect::Focus) setTopImages(f.topImages);
        if (changed & (Aspect::Focus | Aspect::Neurons)) setNeurons(s);
        return;
    }
    m_shownSubject = subject;
    if (!f.mlp.isEmpty()) {
        const std::size_t row = static_cast<std::size_t>(f.mlpRow);
        const float v = row < s.image.norms.mlp.size() ? s.image.norms.mlp[row] : NAN;
        QString detail = std::isfinite(v) ? tr("direct-effect norm %1 on this image. ").arg(v, 0, 'g', 4) : QString();
        detail += s.dataset.ready() ? tr("TextSpan describes heads, not MLPs; below, the dataset's images where this MLP writes the most.")
                                    : tr("TextSpan describes heads, not MLPs; open a dataset for the images where it writes the most.");
        showMlp(s.mlpLabel(f.mlpRow), detail);
        keepTitleRoom({m_title->text(), neuronTitle(s, 99999)});
    } else {
        const HeadDescription* d = nullptr;
        for (const HeadDescription& x : s.descriptions)
            if (x.layer == f.head.layer && x.index == f.head.head) d = &x;
        // Hierarchical towers label their grid rows by stage and block ("s2.b0"): the title says both.
        const auto row = static_cast<std::size_t>(f.head.layer);
        QString name = f.head.name();
        if (row < s.model.layerLabels.size()) name += QString(" (%1, head %2)").arg(QString::fromStdString(s.model.layerLabels[row])).arg(f.head.head);
        showHead(f.head.layer, f.head.head, d, name);
    }
    setTopImages(f.topImages);
    setNeurons(s);
}

}  // namespace vitscope::ui
