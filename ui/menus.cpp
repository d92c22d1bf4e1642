#include "menus.h"

#include "classroom_mode.h"
#include "model/precision.h"
#include "export_controller.h"
#include "resources.h"
#include "session.h"

#include <QAction>
#include <QActionGroup>
#include <QComboBox>
#include <QDialog>
#include <QDialogButtonBox>
#include <QDockWidget>
#include <QFileDialog>
#include <QInputDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QMainWindow>
#include <QMenuBar>
#include <QMessageBox>
#include <QSettings>
#include <QSpinBox>

#include <functional>

namespace vitscope::ui {

namespace {
// OK / Cancel at the foot of a settings dialog's form.
void addOkCancel(QDialog& dialog, QFormLayout* form) {
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, &dialog);
    form->addRow(buttons);
    QObject::connect(buttons, &QDialogButtonBox::accepted, &dialog, &QDialog::accept);
    QObject::connect(buttons, &QDialogButtonBox::rejected, &dialog, &QDialog::reject);
}

QString bundled(const char* name) { return QString::fromStdString(bundledModelDir(name)); }
}  // namespace

Menus::Menus(QMainWindow* window, Session& session, ExportController& exporter, ClassroomMode& classroom)
    : QObject(window), m_window(window), m_session(session), m_export(exporter), m_classroom(classroom) {
    buildFile();
    buildAnalysis();
    buildView();
    buildHelp();
}

void Menus::buildFile() {
    QMenu* file = m_window->menuBar()->addMenu(tr("&File"));
    buildOpen(file);
    m_recent = file->addMenu(tr("&Recent"));
    refreshRecent();
    file->addSeparator();
    buildExport(file);
    file->addSeparator();
    file->addAction(tr("&Quit"), QKeySequence::Quit, m_window, &QWidget::close);
}

void Menus::buildOpen(QMenu* file) {
    file->addAction(tr("Open &model file..."), QKeySequence("Ctrl+M"), this, [this] {
        const QString f = QFileDialog::getOpenFileName(m_window, tr("Open model"), {}, tr("Checkpoints (*.safetensors *.pt *.pth *.bin *.ckpt);;All files (*)"));
        if (!f.isEmpty()) m_session.openModel(f);
    });
    file->addAction(tr("Open model &folder..."), this, [this] {
        const QString d = QFileDialog::getExistingDirectory(m_window, tr("Open model folder"));
        if (!d.isEmpty()) m_session.openModel(d);
    });
    // A classifier or a SigLIP tower has no text side of its own: an aligner into a CLIP's space
    // (vitscope-cli align makes one) gives it one.
    file->addAction(tr("Open &aligner for this model..."), this, [this] {
        const State& s = m_session.state();
        // The model just refused for want of one, else the open model.
        const QString model = !s.modelNeedingAligner.isEmpty() ? s.modelNeedingAligner : QString::fromStdString(s.model.spec);
        if (model.isEmpty()) return m_session.showError(tr("open a model first, then its aligner"));
        const QString f = QFileDialog::getOpenFileName(m_window, tr("Open aligner for %1").arg(QFileInfo(model).fileName()), {},
                                                       tr("Aligners (*.safetensors);;All files (*)"));
        if (!f.isEmpty()) m_session.openModel(model, f);
    });
    file->addAction(tr("&Fit an aligner for this model on the open dataset..."), this, [this] {
        const State& s = m_session.state();
        if (s.modelNeedingAligner.isEmpty()) return m_session.fitAligner({});  // says what to open first
        const QFileInfo model(s.modelNeedingAligner);
        const QString dir = model.isDir() ? model.filePath() : model.path();
        const QString f = QFileDialog::getSaveFileName(m_window, tr("Save the aligner for %1").arg(model.fileName()), dir + "/aligner.safetensors",
                                                       tr("Aligners (*.safetensors)"));
        if (f.isEmpty()) return;
        // The CLI's align --procedure: vitscope's (the default) or vit-decompose's.
        const QStringList procedures{tr("vitscope (from the shared ridge map; the default)"),
                                     tr("reference (vit-decompose's align_with_clip, its bias split over the components)")};
        bool ok = false;
        const QString p = QInputDialog::getItem(m_window, tr("Fitting procedure"), tr("How the per-component maps are fitted:"), procedures, 0, false, &ok);
        if (ok) m_session.fitAligner(f, procedures.indexOf(p) == 1 ? "reference" : "vitscope");
    });
    m_discovered = file->addMenu(tr("&Discovered models"));
    connect(m_discovered, &QMenu::aboutToShow, this, &Menus::fillDiscovered);
    file->addAction(tr("Open &image..."), QKeySequence::Open, this, [this] {
        const QString f = QFileDialog::getOpenFileName(m_window, tr("Open image"), {}, tr("Images (*.png *.jpg *.jpeg *.bmp *.webp *.tif *.tiff);;All files (*)"));
        if (!f.isEmpty()) m_session.openImage(f);
    });
    file->addAction(tr("Open image f&older as dataset..."), QKeySequence("Ctrl+D"), this, [this] {
        const QString d = QFileDialog::getExistingDirectory(m_window, tr("Image folder"));
        if (!d.isEmpty()) m_session.openDataset(d);
    });
}

void Menus::fillDiscovered() {
    m_discovered->clear();
    const QList<QPair<QString, QString>> ours{{tr("Bundled: shapes-clip"), bundled("shapes-clip")},
                                             {tr("Bundled: shapes-vit (through its aligner)"), bundled("shapes-vit")},
                                             {tr("Bundled: shapes-swin (Swin, through its aligner)"), bundled("shapes-swin")},
                                             {tr("Bundled: shapes-clip-spurious"), bundled("shapes-clip-spurious")}};
    for (const auto& [label, dir] : ours) m_discovered->addAction(label, this, [this, dir = dir] { m_session.openModel(dir); });
    m_discovered->addSeparator();
    const std::vector<std::string> found = discoveredModels();
    if (found.empty()) m_discovered->addAction(tr("(nothing in the Hugging Face cache or ~/.cache/clip)"))->setEnabled(false);
    for (const std::string& m : found) {
        const QString spec = QString::fromStdString(m);
        m_discovered->addAction(spec, this, [this, spec] { m_session.openModel(spec); });
    }
}

void Menus::buildExport(QMenu* file) {
    QMenu* figures = file->addMenu(tr("&Export figure"));
    const QList<QPair<QString, QString>> views{{tr("Image and heatmap..."), "canvas"}, {tr("Head grid..."), "grid"},
                                              {tr("Ledger chart..."), "ledger"},       {tr("Head descriptions chart..."), "head"},
                                              {tr("Ablation chart..."), "ablation"},   {tr("Projector..."), "projector"},
                                              {tr("Head comparison..."), "comparison"}, {tr("Both models' maps..."), "second-model"},
                                              {tr("Whole window..."), "window"}};
    for (const auto& [label, view] : views) figures->addAction(label, this, [this, v = view] { m_export.exportDialog(v); });
    QAction* canvas = figures->actions().first();
    canvas->setShortcut(QKeySequence("Ctrl+E"));
    canvas->setObjectName("exportCanvasAction");
    figures->addAction(tr("Figure builder (texts x heads)..."), QKeySequence("Ctrl+Shift+E"), &m_export, &ExportController::figureBuilder);
    QMenu* numbers = file->addMenu(tr("Export &numbers"));
    for (const auto& [label, what] : QList<QPair<QString, QString>>{{tr("Heatmap (patch scores)..."), "heatmap"}, {tr("Grid metric..."), "grid"}, {tr("Ledger..."), "ledger"}})
        numbers->addAction(label, this, [this, w = what] { m_export.numbersDialog(w); });
}

void Menus::buildAnalysis() {
    QMenu* analysis = m_window->menuBar()->addMenu(tr("&Analysis"));
    analysis->addAction(tr("&Describe heads (TextSpan)"), &m_session, &Session::describeHeads);
    analysis->addAction(tr("TextSpan &settings..."), this, &Menus::textSpanSettings);
    analysis->addAction(tr("&Heatmap settings..."), this, &Menus::heatmapSettings);
    // The model's precision (model/precision.h): what this device has is enabled; fp32 by default.
    QMenu* precision = analysis->addMenu(tr("&Precision"));
    auto* group = new QActionGroup(precision);
    const std::vector<std::string> supported = supportedPrecisions(m_session.options().device.toStdString());
    for (const char* name : {"fp32", "bf16", "fp16", "tf32", "auto"}) {
        QAction* a = precision->addAction(name);
        a->setObjectName(QString("precision-%1").arg(name));
        a->setCheckable(true);
        a->setActionGroup(group);
        const bool has = std::string(name) == "auto" || std::find(supported.begin(), supported.end(), name) != supported.end();
        a->setEnabled(has);
        a->setToolTip(has ? tr("Weights and matrix products in %1; norms, softmax and every sum in fp32").arg(name)
                          : tr("%1 lacks %2").arg(QString::fromStdString(deviceDescription(m_session.options().device.toStdString())), name));
        connect(a, &QAction::triggered, this, [this, a] { m_session.setPrecision(a->text()); });
        m_precision.push_back(a);
    }
    analysis->addAction(tr("&Retrieve by the current text"), QKeySequence("Ctrl+R"), this, [this] { m_session.retrieveText(m_session.state().text); });
    analysis->addAction(tr("Reference texts for heatmaps..."), this, [this] {
        const QString f = QFileDialog::getOpenFileName(m_window, tr("Reference texts (one per line)"));
        if (!f.isEmpty()) m_session.loadReferenceTexts(f);
    });
    m_subtract = analysis->addAction(tr("Subtract the reference texts' mean from heatmaps"));
    m_subtract->setObjectName("subtractReferenceAction");
    m_subtract->setCheckable(true);
    m_subtract->setEnabled(false);
    connect(m_subtract, &QAction::triggered, &m_session, &Session::setSubtractReference);
}

void Menus::buildView() {
    QMenu* view = m_window->menuBar()->addMenu(tr("&View"));
    m_classroomAction = view->addAction(tr("&Classroom mode"));
    m_classroomAction->setObjectName("classroomAction");
    m_classroomAction->setShortcut(QKeySequence(Qt::Key_F11));
    m_classroomAction->setCheckable(true);
    connect(m_classroomAction, &QAction::triggered, &m_classroom, &ClassroomMode::setOn);
    connect(&m_classroom, &ClassroomMode::toggled, m_classroomAction, &QAction::setChecked);
    // The model's own preprocessing (the reference's: shortest side resized, centre crop) by
    // default; the whole image squashed to the input size on demand, remembered.
    m_whole = view->addAction(tr("&Whole image (squashed, no centre crop)"));
    m_whole->setObjectName("wholeImageAction");
    m_whole->setCheckable(true);
    m_whole->setToolTip(tr("Analyse the whole image resized to the model's input square instead of the centre crop the model's "
                           "preprocessing makes (the shapes distort when the image is not square)"));
    connect(m_whole, &QAction::triggered, &m_session, &Session::setWholeImage);
    m_registers = view->addAction(tr("Test-time &registers beside the map"));
    m_registers->setObjectName("registersAction");
    m_registers->setCheckable(true);
    m_registers->setToolTip(tr("The map beside the same map of the test-time-register model (Jiang et al., NeurIPS 2025): one extra token "
                               "takes the register neurons' activations, found over the open dataset the first time"));
    connect(m_registers, &QAction::triggered, &m_session, &Session::setRegistersBeside);
    m_normBlocks = view->addAction(tr("Token &norms of every block"));
    m_normBlocks->setObjectName("normBlocksAction");
    m_normBlocks->setCheckable(true);
    m_normBlocks->setToolTip(
        tr("Under the token-norm map, every block's output token norms of the image on one scale, each with its max / "
           "median; tokens over the register reference's outlier threshold outlined (plain ViTs with a class token)"));
    connect(m_normBlocks, &QAction::triggered, &m_session, &Session::setTokenNormsPerBlock);
    view->addSeparator();
    for (QDockWidget* d : m_window->findChildren<QDockWidget*>()) view->addAction(d->toggleViewAction());
}

void Menus::buildHelp() {
    QMenu* help = m_window->menuBar()->addMenu(tr("&Help"));
    auto show = [this](const QString& title, const QString& html) {
        QMessageBox box(QMessageBox::NoIcon, title, html, QMessageBox::Ok, m_window);
        box.setTextFormat(Qt::RichText);
        box.exec();
    };
    help->addAction(tr("&Guide to the views"), QKeySequence(Qt::Key_F1), this, [this, show] { show(tr("Guide to the views"), guideText()); });
    help->addAction(tr("&Keyboard shortcuts"), this, [this, show] { show(tr("Keyboard shortcuts"), shortcutsText()); });
    help->addSeparator();
    help->addAction(tr("&About vitscope"), this, [this] {
        QMessageBox::about(m_window, tr("About vitscope"),
                           tr("vitscope 0.1.0: understanding vision transformers through text.\n"
                              "Decomposes a ViT's image representation into layers, heads, MLPs and tokens, in CLIP's image-text space."));
    });
}

void Menus::render(const State& s, QFlags<Aspect> changed) {
    if (changed & (Aspect::Reference | Aspect::View | Aspect::Model | Aspect::Settings)) {
        m_subtract->setEnabled(s.referenceCount > 0);
        m_subtract->setChecked(s.view.subtractReference);
        m_subtract->setToolTip(s.referenceCount > 0 ? tr("Heatmaps show the text's map minus the mean map of %1 texts from %2").arg(s.referenceCount).arg(s.referenceFile)
                                                    : tr("Load reference texts first (Analysis > Reference texts for heatmaps...)"));
        m_whole->setChecked(s.view.wholeImage);
        for (QAction* a : m_precision) a->setChecked(a->text() == s.precision);
        m_registers->setChecked(s.view.registersBeside);
        m_registers->setEnabled(s.model.registers);
    }
    if (changed & (Aspect::Neurons | Aspect::Model)) m_normBlocks->setChecked(s.neuronTools.normsPerBlock);
    if ((changed & Aspect::Model) && s.hasModel()) addRecent("recent/models", QString::fromStdString(s.model.spec));
    if ((changed & Aspect::Image) && s.hasImage()) addRecent("recent/images", s.imagePath());
    if ((changed & Aspect::Dataset) && s.dataset.ready()) addRecent("recent/datasets", s.dataset.folder);
}

void Menus::addRecent(const QString& key, const QString& path) {
    QSettings settings;
    QStringList list = settings.value(key).toStringList();
    if (!list.isEmpty() && list.front() == path) return;
    list.removeAll(path);
    list.prepend(path);
    while (list.size() > 10) list.removeLast();
    settings.setValue(key, list);
    refreshRecent();
}

void Menus::refreshRecent() {
    m_recent->clear();
    QSettings s;
    using Open = std::function<void(const QString&)>;
    const QList<std::tuple<QString, QString, Open>> kinds{{"recent/images", tr("Images"), [this](const QString& p) { m_session.openImage(p); }},
                                                          {"recent/models", tr("Models"), [this](const QString& p) { m_session.openModel(p); }},
                                                          {"recent/datasets", tr("Datasets"), [this](const QString& p) { m_session.openDataset(p); }}};
    for (const auto& [key, label, open] : kinds) {
        m_recent->addSection(label);
        for (const QString& p : s.value(key).toStringList()) m_recent->addAction(p, this, [open = open, p] { open(p); });
    }
}

QString Menus::shortcutsText() const {
    // Every menu action with a shortcut, as the menus define them (the list cannot go stale).
    QStringList rows;
    std::function<void(const QMenu*)> walk = [&](const QMenu* menu) {
        for (QAction* a : menu->actions()) {
            if (a->menu()) walk(a->menu());
            else if (!a->shortcut().isEmpty())
                rows << QString("<tr><td><b>%1</b></td><td>%2</td></tr>")
                            .arg(a->shortcut().toString(QKeySequence::NativeText).toHtmlEscaped(), a->text().remove('&').toHtmlEscaped());
        }
    };
    for (QAction* a : m_window->menuBar()->actions())
        if (a->menu()) walk(a->menu());
    rows << tr("<tr><td><b>Left / Right</b></td><td>Classroom mode: previous / next step (outside the text box)</td></tr>")
         << tr("<tr><td><b>Esc</b></td><td>Leave classroom mode</td></tr>")
         << tr("<tr><td><b>Click / Ctrl-click / Shift-click</b></td><td>Head grid: select, toggle, extend</td></tr>")
         << tr("<tr><td><b>Arrow keys</b></td><td>Head grid: move the selection to the neighbouring head</td></tr>");
    return "<table cellspacing=6>" + rows.join("") + "</table>";
}

QString Menus::guideText() const {
    const QString readme = QString::fromStdString(dataFile("README.md"));
    return tr("<p><b>Head grid</b> (left): one cell per attention head (rows: layers), coloured by the metric above it; "
              "hover for a head's TextSpan descriptions, click to open it in the head panel.</p>"
              "<p><b>Canvas</b> (centre): the image as the model sees it and a heatmap for the text in the box. "
              "The decomposition map is each patch's direct contribution to the image's score for the text.</p>"
              "<p><b>Head panel</b>: the texts that explain the clicked head's output and its top images.</p>"
              "<p><b>Completeness ledger</b>: the score for the text split into every component; the parts add up "
              "to the model's score.</p>"
              "<p><b>Retrieval</b>: images of the open dataset for a text or an image, through the whole "
              "representation and through the selected heads.</p>"
              "<p><b>Ablation</b>: mean-ablate heads and watch the zero-shot accuracy of a labelled task.</p>"
              "<p><b>Export</b> (File &gt; Export figure): any view as PNG, SVG or PDF, with a JSON record beside it.</p>"
              "<p>The README (%1) has the command line, the file formats and what each analysis computes.</p>")
        .arg(readme.isEmpty() ? tr("in the source tree or share/vitscope") : readme.toHtmlEscaped());
}

void Menus::textSpanSettings() {
    const TextSpanSettings current = m_session.state().textspan;
    QDialog dialog(m_window);
    dialog.setWindowTitle(tr("TextSpan settings"));
    auto* form = new QFormLayout(&dialog);
    auto* perHead = new QSpinBox(&dialog);
    perHead->setRange(1, 100);
    perHead->setValue(current.perHead);
    perHead->setToolTip(tr("Texts chosen per head (the reference uses 10; its README runs 20)"));
    auto* rank = new QSpinBox(&dialog);
    rank->setRange(1, 4096);
    rank->setValue(current.rank);
    rank->setToolTip(tr("Texts are first projected onto the head's top singular directions (the reference uses 80; a rank at or "
                        "above the embedding dimension projects nothing)"));
    auto* convention = new QComboBox(&dialog);
    convention->addItem(tr("exact (each term centred by its own mean)"), "exact");
    convention->addItem(tr("textspan (the TextSpan reference's data)"), "textspan");
    convention->addItem(tr("vit-decompose (Swin / MaxViT: the vit-decompose reference's terms)"), "vit-decompose");
    convention->setCurrentIndex(std::max(0, convention->findData(current.convention)));
    convention->setToolTip(tr("The decomposition convention of the dataset caches TextSpan, ranking and retrieval read; textspan "
                              "shares the final norm's mean and offset over the layer terms and divides by the output norm, as the "
                              "reference code does; vit-decompose (Swin and MaxViT only) gives that walker's terms, which miss the "
                              "output (README, \"vit-decompose's convention\"). Changing it rebuilds the dataset's cache."));
    form->addRow(tr("Texts per head"), perHead);
    form->addRow(tr("Text projection rank"), rank);
    form->addRow(tr("Cached terms"), convention);
    addOkCancel(dialog, form);
    if (dialog.exec() == QDialog::Accepted) m_session.setTextSpanSettings({perHead->value(), rank->value(), convention->currentData().toString()});
}

void Menus::heatmapSettings() {
    const State& st = m_session.state();
    const MapOptions current = st.view.map;
    QDialog dialog(m_window);
    dialog.setWindowTitle(tr("Heatmap settings"));
    auto* form = new QFormLayout(&dialog);
    // Chefer's first layer: the family's reference notebook by default (CLIP / SigLIP: the last
    // layer only, supervised ViTs: every layer).
    auto* chefer = new QComboBox(&dialog);
    chefer->setObjectName("cheferStartLayer");
    chefer->addItem(tr("the reference's for this model (%1)").arg(st.model.cheferDefaultStartLayer < 0 ? tr("last layer") : tr("every layer")), QVariant());
    chefer->addItem(tr("last layer only (CLIP notebook)"), -1);
    for (int l = 0; l < std::max(1, st.model.layers); ++l)
        chefer->addItem(l == 0 ? tr("every layer (ViT notebook)") : tr("from layer %1").arg(l), l);
    chefer->setCurrentIndex(current.cheferStartLayer ? std::max(0, chefer->findData(*current.cheferStartLayer)) : 0);
    auto* target = new QComboBox(&dialog);
    target->addItem(tr("auto: probability over the reference texts when loaded (pytorch-grad-cam's CLIP recipe), else the text's logit"), "auto");
    target->addItem(tr("probability over the reference texts"), "probability");
    target->addItem(tr("the text's logit"), "logit");
    target->setCurrentIndex(std::max(0, target->findData(current.gradcamTarget)));
    auto* siglip = new QComboBox(&dialog);
    siglip->addItem(tr("pooling heads' per-token terms (TextSpan's SigLIP demo)"), "pool");
    siglip->addItem(tr("encoder heads through the frozen pool"), "encoder");
    siglip->setCurrentIndex(current.siglipMap == "encoder" ? 1 : 0);
    auto* size = new QSpinBox(&dialog);
    size->setRange(0, 1024);
    size->setSingleStep(16);
    size->setSpecialValueText(tr("as analysed"));
    size->setValue(current.inputSize);
    size->setToolTip(tr("Gradient maps on the image squashed to N x N with the position embeddings resampled; LeGrad's reference uses 448"));
    form->addRow(tr("Chefer: first layer"), chefer);
    form->addRow(tr("Grad-CAM: target"), target);
    form->addRow(tr("SigLIP decomposition map"), siglip);
    form->addRow(tr("Gradient maps: input side (px)"), size);
    addOkCancel(dialog, form);
    if (dialog.exec() != QDialog::Accepted) return;
    MapOptions o;
    if (chefer->currentData().isValid()) o.cheferStartLayer = chefer->currentData().toInt();
    o.gradcamTarget = target->currentData().toString();
    o.siglipMap = siglip->currentData().toString();
    o.inputSize = size->value();
    m_session.setMapOptions(o);
}

}  // namespace vitscope::ui
