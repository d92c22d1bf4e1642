#include "controls.h"

#include "session.h"
#include "word_completer.h"

#include <QCheckBox>
#include <QComboBox>
#include <QCompleter>
#include <QFile>
#include <QHBoxLayout>
#include <QKeyEvent>
#include <QLabel>
#include <QLineEdit>
#include <QSignalBlocker>
#include <QSlider>
#include <QStandardItemModel>
#include <QVBoxLayout>

namespace vitscope::ui {

namespace {

const char* const kMethods[] = {"decomposition", "surgery", "raw", "attention", "rollout", "gradcam", "chefer", "legrad", "token-norms"};

// The text pool's lines (up to 3,000), the text box's suggestions.
QStringList poolTexts(const QString& file) {
    QStringList out;
    QFile f(file);
    if (file.isEmpty() || !f.open(QIODevice::ReadOnly)) return out;
    while (!f.atEnd() && out.size() < 3000) {
        const QString line = QString::fromUtf8(f.readLine()).trimmed();
        if (!line.isEmpty() && !line.startsWith('#')) out << line;
    }
    return out;
}

}  // namespace

TextControls::TextControls(QWidget* parent) : QWidget(parent) {
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    auto* top = new QHBoxLayout;
    m_text = new QComboBox;
    m_text->setEditable(true);
    m_text->setInsertPolicy(QComboBox::NoInsert);
    m_text->setMinimumWidth(220);
    m_text->setObjectName("textBox");
    m_text->lineEdit()->setPlaceholderText(tr("type a text, e.g. a red circle"));
    // Both: a key reaches the combo box first when it holds the focus, and it hands the line edit
    // its shortcut-override events directly (no filter of the line edit sees them then).
    m_text->installEventFilter(this);
    m_text->lineEdit()->installEventFilter(this);
    m_words = new WordCompleter(m_text->lineEdit(), this);
    // Suggestions from the pool as a popup: typing never has its text completed in place.
    auto* completer = new QCompleter(m_text->model(), m_text);
    completer->setCompletionMode(QCompleter::PopupCompletion);
    completer->setFilterMode(Qt::MatchContains);
    completer->setCaseSensitivity(Qt::CaseInsensitive);
    m_text->setCompleter(completer);
    m_method = new QComboBox;
    m_method->setObjectName("methodBox");
    buildMethods();
    top->addWidget(m_text, 1);
    top->addWidget(m_method);
    layout->addLayout(top);
    layout->addWidget(buildViewRow());
    connect(m_text->lineEdit(), &QLineEdit::returnPressed, this, [this] { emit textEntered(m_text->currentText().trimmed()); });
    connect(m_text, &QComboBox::textActivated, this, [this](const QString& t) { emit textEntered(t.trimmed()); });
    connect(m_method, &QComboBox::currentTextChanged, this, &TextControls::methodChosen);
}

void TextControls::buildMethods() {
    for (const char* m : kMethods) m_method->addItem(m);
    const QStringList tips{
        tr("Each image token's direct contribution to the image's score for the text: the class token's attention to it times its "
           "value, through every (or the selected) head. Not a segmentation of where the text is."),
        tr("CLIP Surgery: value-value attention in the last blocks, minus the features shared by all texts (the empty prompt, or the "
           "reference texts)"),
        tr("Similarity of each final token to the text"),
        tr("Last layer's class-token attention (text-independent)"),
        tr("Attention rollout over all layers (text-independent)"),
        tr("Grad-CAM on the last block's tokens: their features weighted by the text score's mean gradient, ReLU"),
        tr("Chefer et al. 2021: attention weighted by its gradient (positive part, mean over heads), propagated from the identity"),
        tr("LeGrad: each of the last two layers' own gradient of the text score with respect to its attention, averaged over heads "
           "and queries, summed"),
        tr("The norm of every patch token at a block's output (the grid row in focus, else the block the register reference reads): "
           "high-norm outlier tokens, which test-time registers move off the image (text-independent)")};
    for (int i = 0; i < tips.size(); ++i) m_method->setItemData(i, tips[i], Qt::ToolTipRole);
}

QWidget* TextControls::buildViewRow() {
    // A row of its own: one row of everything did not fit beside the docks at 1024 px.
    m_viewRow = new QWidget;
    auto* row = new QHBoxLayout(m_viewRow);
    row->setContentsMargins(0, 0, 0, 0);
    m_onlySelected = new QCheckBox(tr("Selected heads only"));
    m_onlySelected->setObjectName("onlySelectedHeads");
    m_perHead = new QCheckBox(tr("Per-head maps"));
    m_perHead->setObjectName("perHeadMaps");
    m_opacityLabel = new QLabel(tr("opacity"));
    m_opacityLabel->setObjectName("opacityLabel");
    m_opacity = new QSlider(Qt::Horizontal);
    m_opacity->setRange(0, 100);
    m_opacity->setValue(55);
    m_opacity->setMinimumWidth(70);
    m_opacity->setMaximumWidth(110);
    m_colormap = new QComboBox;
    m_colormap->setObjectName("colormapBox");
    m_colormap->addItems(colormapNames());
    row->addWidget(m_onlySelected);
    row->addWidget(m_perHead);
    row->addStretch(1);
    row->addWidget(m_opacityLabel);
    row->addWidget(m_opacity);
    row->addWidget(m_colormap);
    connect(m_onlySelected, &QCheckBox::toggled, this, &TextControls::onlySelectedToggled);
    connect(m_perHead, &QCheckBox::toggled, this, &TextControls::perHeadToggled);
    connect(m_opacity, &QSlider::valueChanged, this, [this](int v) { emit opacityChanged(v / 100.0); });
    connect(m_colormap, &QComboBox::currentTextChanged, this, [this](const QString& n) { emit colormapChanged(colormapFromName(n)); });
    return m_viewRow;
}

void TextControls::render(const State& s, QFlags<Aspect> changed) {
    if (changed & Aspect::Model) {
        const QSignalBlocker block(m_method);
        // The methods the model defines (core's rule); the others stay listed, disabled.
        auto* items = qobject_cast<QStandardItemModel*>(m_method->model());
        for (int i = 0; items && i < items->rowCount(); ++i) {
            const std::string name = items->item(i)->text().toStdString();
            items->item(i)->setEnabled(std::find(s.model.heatmapMethods.begin(), s.model.heatmapMethods.end(), name) != s.model.heatmapMethods.end());
        }
        // Each method's one-line summary and reference, as the model's family defines it.
        for (std::size_t i = 0; i < s.model.heatmapMethods.size() && i < s.model.heatmapMethodSummaries.size(); ++i) {
            const int row = m_method->findText(QString::fromStdString(s.model.heatmapMethods[i]));
            if (row >= 0) m_method->setItemData(row, QString::fromStdString(s.model.heatmapMethodSummaries[i]), Qt::ToolTipRole);
        }
        // A model without a class token (SigLIP) has its pooling probe where CLIP has the class token.
        const bool pooled = s.model.poolHeads > 0;
        m_method->setItemData(3, pooled ? tr("The pooling probe's attention over the patches (text-independent)")
                                        : tr("Last layer's class-token attention (text-independent)"), Qt::ToolTipRole);
        m_method->setItemData(4, pooled ? tr("The pooling probe's attention carried through the rollout of all layers (text-independent)")
                                        : tr("Attention rollout over all layers (text-independent)"), Qt::ToolTipRole);
        QStringList words;
        for (const std::string& w : s.model.vocabulary) words << QString::fromStdString(w);
        m_words->setWords(words);
        m_text->lineEdit()->setToolTip(words.isEmpty() ? QString() : tr("This model knows %1 words; the list completes the word being typed").arg(words.size()));
        const QString typed = m_text->currentText();
        const QSignalBlocker blockText(m_text);
        m_text->clear();
        if (s.hasModel()) m_text->addItems(poolTexts(s.textPoolFile()));  // the pool of the model's text side
        m_text->setEditText(typed);
    }
    if (changed & (Aspect::View | Aspect::Model)) {
        const QSignalBlocker b1(m_method), b2(m_onlySelected), b3(m_perHead);
        m_method->setCurrentText(s.view.method);
        m_onlySelected->setChecked(s.view.onlySelected);
        m_perHead->setChecked(s.view.perHead);
    }
    if ((changed & Aspect::Text) && m_text->currentText().trimmed() != s.text) {
        const QSignalBlocker block(m_text);
        m_text->setEditText(s.text);
    }
}

QString TextControls::text() const { return m_text->currentText(); }
double TextControls::opacity() const { return m_opacity->value() / 100.0; }
QString TextControls::colormapName() const { return m_colormap->currentText(); }
void TextControls::setOpacity(double opacity) { m_opacity->setValue(qRound(100 * opacity)); }
void TextControls::setColormapName(const QString& name) { m_colormap->setCurrentText(name); }
void TextControls::setViewSettingsShown(bool shown) { m_viewRow->setVisible(shown); }

bool TextControls::eventFilter(QObject* watched, QEvent* event) {
    // Ctrl+E exports the canvas, also from the text box (where X11's line edit binds it to "end of
    // line"): the key comes here as a press and is turned into the export.
    if ((watched == m_text || watched == m_text->lineEdit()) && (event->type() == QEvent::ShortcutOverride || event->type() == QEvent::KeyPress)) {
        const auto* key = static_cast<QKeyEvent*>(event);
        if (key->key() == Qt::Key_E && key->modifiers() == Qt::ControlModifier) {
            if (event->type() == QEvent::ShortcutOverride) {
                event->accept();  // delivered as a key press, caught below
                return true;
            }
            emit exportRequested();
            return true;
        }
    }
    return QWidget::eventFilter(watched, event);
}

GridControls::GridControls(QWidget* parent) : QWidget(parent) {
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    m_metric = new QComboBox;
    m_metric->setObjectName("metricBox");
    m_metric->addItems({tr("Direct effect (this image)"), tr("Score for the text (this image)"), tr("TextSpan variance explained"),
                        tr("Property score"), tr("Latent's share (Concepts panel)"), tr("Picked vs. the rest (Projector)")});
    m_property = new QLineEdit;
    m_property->setObjectName("propertyBox");
    m_property->setPlaceholderText(tr("property: color, shape, texture..."));
    layout->addWidget(new QLabel(tr("Grid colour")));
    layout->addWidget(m_metric);
    layout->addWidget(m_property);
    connect(m_metric, &QComboBox::currentIndexChanged, this, &GridControls::metricChosen);
    connect(m_property, &QLineEdit::returnPressed, this, [this] { emit propertyEntered(m_property->text().trimmed()); });
}

void GridControls::render(const State& s, QFlags<Aspect> changed) {
    if (changed & Aspect::Model) {
        // The property box completes this model's word lists and names a few of them.
        QStringList names;
        for (const std::string& n : s.model.propertyNames) names << QString::fromStdString(n);
        auto* completer = new QCompleter(names, m_property);
        completer->setCaseSensitivity(Qt::CaseInsensitive);
        completer->setFilterMode(Qt::MatchStartsWith);
        delete m_property->completer();
        m_property->setCompleter(completer);
        m_property->setPlaceholderText(names.isEmpty() ? tr("property: a file of texts") : tr("property: %1...").arg(QStringList(names.mid(0, 3)).join(", ")));
        m_property->setToolTip(tr("Rank heads by a property: one of this model's word lists (%1) or a file of texts, one per line; Enter").arg(names.join(", ")));
    }
    if (changed & Aspect::Grid) {
        const QSignalBlocker block(m_metric);
        m_metric->setCurrentIndex(static_cast<int>(s.metric));
        if (m_property->text().trimmed() != s.property) m_property->setText(s.property);
    }
}

}  // namespace vitscope::ui
