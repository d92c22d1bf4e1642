#include "concept_panel.h"

#include "session.h"
#include "thumbnails.h"

#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QMenu>
#include <QPushButton>
#include <QStackedWidget>
#include <QVBoxLayout>

#include <cmath>

namespace vitscope::ui {

namespace {

QString q(const std::string& s) { return QString::fromStdString(s); }
constexpr int kLatentRole = Qt::UserRole + 1;  // an item's latent (SAE rows)
constexpr int kTextRole = Qt::UserRole + 2;    // an item's concept (SpLiCE rows)

}  // namespace

ConceptPanel::ConceptPanel(Thumbnails* thumbs, QWidget* parent) : QWidget(parent), m_thumbs(thumbs) {
    auto* layout = new QVBoxLayout(this);
    m_mode = new QComboBox;
    m_mode->setObjectName("conceptMode");
    m_mode->addItem(tr("SpLiCE concepts"), "splice");
    m_mode->addItem(tr("SAE latents"), "sae");
    m_mode->setToolTip(tr("SpLiCE: the image as a sparse non-negative sum of concept texts (Bhalla et al., NeurIPS 2024). "
                          "SAE: a sparse autoencoder's active latents, each traced exactly to the heads and tokens that write it."));
    layout->addWidget(m_mode);
    m_rows = new QStackedWidget;
    m_rows->addWidget(buildSpliceRow());
    m_rows->addWidget(buildSaeRow());
    layout->addWidget(m_rows);
    m_status = new QLabel(tr("Decompose the image into concepts, or open an SAE."));
    m_status->setObjectName("conceptStatus");
    m_status->setWordWrap(true);
    layout->addWidget(m_status);
    m_list = new QListWidget;
    m_list->setObjectName("conceptList");
    m_list->setMinimumHeight(70);
    layout->addWidget(m_list, 3);
    m_detail = new QLabel;
    m_detail->setObjectName("conceptDetail");
    m_detail->setWordWrap(true);
    m_detail->setTextInteractionFlags(Qt::TextSelectableByMouse);
    layout->addWidget(m_detail);
    m_top = new QListWidget;
    m_top->setObjectName("conceptTopImages");
    m_top->setViewMode(QListView::IconMode);
    m_top->setIconSize({44, 44});
    m_top->setResizeMode(QListView::Adjust);
    m_top->setMaximumHeight(76);
    m_top->hide();
    layout->addWidget(m_top, 1);
    connect(m_mode, &QComboBox::activated, this, [this](int i) { emit modeChosen(m_mode->itemData(i).toString()); });
    connect(m_list, &QListWidget::itemClicked, this, &ConceptPanel::activate);
    connect(m_list, &QListWidget::itemActivated, this, &ConceptPanel::activate);
    connect(m_top, &QListWidget::itemClicked, this, [this](QListWidgetItem* it) { emit imageActivated(it->data(Qt::UserRole).toString()); });
    connect(m_thumbs, &Thumbnails::ready, this, [this](const QString& path, const QImage& img) {
        for (int i = 0; i < m_top->count(); ++i)
            if (m_top->item(i)->data(Qt::UserRole).toString() == path) m_top->item(i)->setIcon(QPixmap::fromImage(img));
    });
}

QWidget* ConceptPanel::buildSpliceRow() {
    auto* w = new QWidget;
    auto* v = new QVBoxLayout(w);
    v->setContentsMargins(0, 0, 0, 0);
    m_vocab = new QLabel;
    m_vocab->setWordWrap(true);
    v->addWidget(m_vocab);
    auto* row = new QHBoxLayout;
    auto* choose = new QPushButton(tr("Vocabulary..."));
    choose->setObjectName("conceptVocabulary");
    choose->setToolTip(tr("A text file, one concept per line (embedded as it is, as the reference does)"));
    m_l1 = new QDoubleSpinBox;
    m_l1->setObjectName("conceptL1");
    m_l1->setDecimals(3);
    m_l1->setRange(0.001, 2.0);
    m_l1->setSingleStep(0.05);
    m_l1->setValue(0.15);
    m_l1->setPrefix("l1 ");
    m_l1->setToolTip(tr("Sparsity: the reference's l1 penalty (its scripts use 0.15; its SPLICE class default is 0.01)"));
    m_of = new QComboBox;
    m_of->setObjectName("conceptOf");
    m_of->addItems({tr("the image"), tr("the focused head")});
    m_of->setToolTip(tr("What SpLiCE decomposes: the image's embedding (centred by the dataset's mean, as the reference does), or "
                        "the focused head's contribution, centred by that head's own mean over the dataset (its image-independent "
                        "part would otherwise dominate every decomposition)"));
    m_decompose = new QPushButton(tr("Decompose"));
    m_decompose->setObjectName("conceptDecompose");
    row->addWidget(choose);
    row->addWidget(m_l1);
    v->addLayout(row);
    auto* second = new QHBoxLayout;  // two rows: the dock stays narrow enough for a 1024 px window
    second->addWidget(m_of);
    second->addWidget(m_decompose, 1);
    v->addLayout(second);
    auto* vocabMenu = new QMenu(choose);
    vocabMenu->addAction(tr("File..."), this, [this] {
        const QString f = QFileDialog::getOpenFileName(this, tr("Concept vocabulary (one per line)"), {}, tr("Text files (*.txt);;All files (*)"));
        if (f.isEmpty()) return;
        m_vocabFile = f;
        emit decomposeRequested(m_vocabFile, m_l1->value(), m_of->currentIndex() == 1);
    });
    vocabMenu->addAction(tr("The model's default"), this, [this] {
        m_vocabFile.clear();
        emit decomposeRequested(m_vocabFile, m_l1->value(), m_of->currentIndex() == 1);
    });
    choose->setMenu(vocabMenu);
    connect(m_l1, &QDoubleSpinBox::editingFinished, this, [this] {  // another l1: decomposed again
        if (std::abs(m_l1->value() - m_stateL1) < 1e-9) return;
        emit decomposeRequested(m_vocabFile, m_l1->value(), m_of->currentIndex() == 1);
    });
    connect(m_decompose, &QPushButton::clicked, this, [this] { emit decomposeRequested(m_vocabFile, m_l1->value(), m_of->currentIndex() == 1); });
    return w;
}

QWidget* ConceptPanel::buildSaeRow() {
    auto* w = new QWidget;
    auto* v = new QVBoxLayout(w);
    v->setContentsMargins(0, 0, 0, 0);
    m_sae = new QLabel(tr("No SAE open."));
    m_sae->setObjectName("conceptSae");
    m_sae->setWordWrap(true);
    v->addWidget(m_sae);
    auto* row = new QHBoxLayout;
    auto* open = new QPushButton(tr("Open SAE..."));
    open->setObjectName("conceptOpenSae");
    open->setToolTip(tr("A vitscope .safetensors, a ViT-Prisma folder (config.json + weights.pt), a SAELens folder "
                        "(cfg.json + sae_weights.safetensors) or an MSAE .pth"));
    auto* menu = new QMenu(open);
    menu->addAction(tr("File..."), this, [this] {
        const QString f = QFileDialog::getOpenFileName(this, tr("Sparse autoencoder"), {}, tr("SAE files (*.safetensors *.pt *.pth);;All files (*)"));
        if (!f.isEmpty()) emit saeChosen(f);
    });
    menu->addAction(tr("Folder (ViT-Prisma, SAELens)..."), this, [this] {
        const QString d = QFileDialog::getExistingDirectory(this, tr("Sparse autoencoder folder"));
        if (!d.isEmpty()) emit saeChosen(d);
    });
    open->setMenu(menu);
    m_search = new QLineEdit;
    m_search->setObjectName("conceptSearch");
    m_search->setPlaceholderText(tr("search latents by text"));
    m_search->setToolTip(tr("Latents whose decoder direction is nearest the text (SAEs on a CLIP model's output); Enter"));
    row->addWidget(open);
    row->addWidget(m_search, 1);
    v->addLayout(row);
    connect(m_search, &QLineEdit::returnPressed, this, [this] { emit latentSearch(m_search->text()); });
    return w;
}

void ConceptPanel::connectTo(Session* s) {
    connect(this, &ConceptPanel::modeChosen, s, &Session::setConceptMode);
    connect(this, &ConceptPanel::decomposeRequested, s, &Session::decomposeConcepts);
    connect(this, &ConceptPanel::saeChosen, s, &Session::openSae);
    connect(this, &ConceptPanel::conceptActivated, s, &Session::setText);
    connect(this, &ConceptPanel::latentActivated, s, &Session::chooseLatent, Qt::QueuedConnection);  // (the list refills)
    connect(this, &ConceptPanel::latentSearch, s, &Session::searchLatents);
    connect(this, &ConceptPanel::imageActivated, s, &Session::openImage);
}

QString ConceptPanel::statusText() const { return m_status->text(); }
QString ConceptPanel::detailText() const { return m_detail->text(); }

void ConceptPanel::activate(QListWidgetItem* item) {
    if (!item) return;
    if (item->data(kLatentRole).isValid()) emit latentActivated(item->data(kLatentRole).toLongLong());
    else if (item->data(kTextRole).isValid()) emit conceptActivated(item->data(kTextRole).toString());
}

void ConceptPanel::render(const State& s, QFlags<Aspect> changed) {
    if (!(changed & (Aspect::Concepts | Aspect::Model | Aspect::Image | Aspect::Dataset))) return;
    const ConceptState& c = s.concepts;
    const int page = c.mode == "sae" ? 1 : 0;
    m_mode->setCurrentIndex(page);
    m_rows->setCurrentIndex(page);
    m_vocabFile = c.vocabFile;  // the one in use (a file that failed is not)
    m_vocab->setText(tr("Vocabulary: %1").arg(c.vocabFile.isEmpty() ? tr("the model's default") : QFileInfo(c.vocabFile).fileName()));
    m_stateL1 = c.l1;
    if (!m_l1->hasFocus()) m_l1->setValue(c.l1);
    m_decompose->setEnabled(s.hasImage());
    m_of->setCurrentIndex(c.ofFocusedHead ? 1 : 0);
    m_sae->setText(c.sae ? q(c.sae->description) : tr("No SAE open."));
    m_search->setEnabled(c.sae && c.sae->named);
    if (page == 0) showSplice(s);
    else showLatents(s);
    showDetail(s);
}

void ConceptPanel::showSplice(const State& s) {
    const ConceptState& c = s.concepts;
    m_list->clear();
    if (!c.note.isEmpty()) m_status->setText(c.note);
    else if (c.computing) m_status->setText(tr("decomposing..."));
    else if (!c.splice) m_status->setText(tr("Decompose: the image as a sparse non-negative sum of the vocabulary's concepts (SpLiCE)."));
    if (!c.splice) return;
    const SpliceView& v = *c.splice;
    if (!c.computing && c.note.isEmpty())
        m_status->setText(tr("%1%2 of %3 concepts (l1 %4), cosine %5; click one for its map")
                              .arg(v.component.empty() ? QString() : tr("head %1: ").arg(q(v.component)))
                              .arg(v.concepts.size())
                              .arg(v.vocabulary)
                              .arg(v.l1)
                              .arg(v.cosine, 0, 'f', 3));
    m_status->setToolTip(tr("The reconstruction's cosine with the image, as the reference computes it; the image mean over the %1 images "
                            "of the open dataset").arg(v.meanImages));
    for (const ConceptWeight& w : v.concepts) {
        auto* item = new QListWidgetItem(QString("%1   %2").arg(w.weight, 0, 'f', 3).arg(q(w.text)), m_list);
        item->setData(kTextRole, q(w.text));
        item->setToolTip(tr("weight %1 (vocabulary line %2): click to map it").arg(w.weight, 0, 'g', 4).arg(w.index + 1));
    }
}

void ConceptPanel::showLatents(const State& s) {
    const ConceptState& c = s.concepts;
    m_list->clear();
    if (!c.note.isEmpty()) m_status->setText(c.note);
    else if (!c.sae) m_status->setText(tr("Open an SAE (vitscope, ViT-Prisma, SAELens or MSAE files) for this model."));
    else if (c.computing) m_status->setText(tr("attributing the latents..."));
    else if (c.latents)
        m_status->setText(tr("%1 of %2 latents active (split over the components to %3); click one")
                              .arg(c.latents->active.size())
                              .arg(c.sae->dSae)
                              .arg(c.latents->maxAbsError, 0, 'g', 2));
    const auto add = [this, &c](const SaeLatentRow& r, bool found) {
        const QString name = r.name.empty() ? QString() : QString("  \"%1\" (%2)").arg(q(r.name)).arg(r.nameScore, 0, 'f', 2);
        const QString lead = found ? tr("  cos %1  ").arg(r.similarity, 0, 'f', 2) : QString();
        auto* item = new QListWidgetItem(QString("%1#%2  %3%4").arg(lead).arg(r.latent).arg(r.activation, 0, 'f', 3).arg(name), m_list);
        item->setData(kLatentRole, qint64(r.latent));
        item->setToolTip(tr("latent %1: activation %2, pre-activation %3").arg(r.latent).arg(r.activation, 0, 'g', 4).arg(r.pre, 0, 'g', 4));
        if (r.latent == c.latent) m_list->setCurrentItem(item);
    };
    if (c.latents)
        for (const SaeLatentRow& r : c.latents->active) add(r, false);
    if (!c.found.empty()) {
        auto* head = new QListWidgetItem(tr("Nearest \"%1\" by decoder direction (cosine, activation here, name):").arg(c.query), m_list);
        head->setFlags(Qt::NoItemFlags);
        for (const SaeLatentRow& r : c.found) add(r, true);
        if (c.latents.has_value() && c.latents->active.size() > 6) m_list->scrollToItem(head, QAbstractItemView::PositionAtTop);
    }
}

void ConceptPanel::showDetail(const State& s) {
    const ConceptState& c = s.concepts;
    m_top->clear();
    const bool shown = c.mode == "sae" && c.detail.has_value();
    m_top->setVisible(shown && !c.detail->topImages.empty());
    if (!shown) {
        m_detail->setText(c.mode == "sae" && c.latent >= 0 ? tr("tracing latent %1...").arg(c.latent) : QString());
        return;
    }
    const SaeLatentDetail& d = *c.detail;
    double heads = 0, mlps = 0;
    for (float v : d.grid.heads.values)
        if (!std::isnan(v)) heads += v;
    for (float v : d.grid.mlp)
        if (!std::isnan(v)) mlps += v;
    // The rest grouped: the embedding, the model's bias terms, the SAE's own constant.
    double embed = 0, biases = 0, saeBias = 0;
    for (const ComponentValue& v : d.others) (v.name == "embed" ? embed : v.name == "sae_bias" ? saeBias : biases) += v.value;
    const QString rest = tr("embed %1 + biases %2 + SAE constant %3").arg(embed, 0, 'f', 3).arg(biases, 0, 'f', 3).arg(saeBias, 0, 'f', 3);
    m_detail->setToolTip(tr("The latent's pre-activation split exactly over the model's components (the SAE's input "
                            "normalisation frozen at this image). The grid shows each head's share, the canvas each image token's "
                            "(through the heads); below, the dataset's images where it is largest."));
    m_detail->setText(tr("Latent %1%2: pre-activation %3 = heads %4 + MLPs %5 + %6.%7")
                          .arg(d.row.latent)
                          .arg(d.row.name.empty() ? QString() : QString(" \"%1\"").arg(q(d.row.name)))
                          .arg(d.row.pre, 0, 'f', 3)
                          .arg(heads, 0, 'f', 3)
                          .arg(mlps, 0, 'f', 3)
                          .arg(rest)
                          .arg(d.topNote.empty() ? QString() : "\n" + tr("No top images: %1").arg(q(d.topNote))));
    for (const Hit& h : d.topImages) {
        const QString path = q(h.path);
        auto* item = new QListWidgetItem(QString::number(h.score, 'f', 2), m_top);
        item->setData(Qt::UserRole, path);
        item->setToolTip(path);
        const QImage img = m_thumbs->get(path);
        item->setIcon(img.isNull() ? thumbnailPlaceholder(m_top->iconSize()) : QPixmap::fromImage(img));
    }
}

}  // namespace vitscope::ui
