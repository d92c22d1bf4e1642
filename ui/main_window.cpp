#include "main_window.h"

#include "ablation_panel.h"
#include "classroom.h"
#include "figure_export.h"
#include "gallery.h"
#include "head_panel.h"
#include "image_canvas.h"
#include "ledger_view.h"
#include "log_sink.h"
#include "metatypes.h"
#include "word_completer.h"
#include "resources.h"
#include "thumbnails.h"

#include <qcustomplot.h>

#include <QAction>
#include <QApplication>
#include <QCheckBox>
#include <QCloseEvent>
#include <QComboBox>
#include <QCompleter>
#include <QDir>
#include <QDockWidget>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QInputDialog>
#include <QJsonArray>
#include <QJsonObject>
#include <QLabel>
#include <QLineEdit>
#include <QMenuBar>
#include <QMessageBox>
#include <QPainter>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QFrame>
#include <QScrollArea>

#include <functional>

#include <spdlog/spdlog.h>
#include <QTextEdit>
#include <QAbstractSpinBox>
#include <QSpinBox>
#include <QFormLayout>
#include <QDialogButtonBox>
#include <QDialog>
#include <QSlider>
#include <QKeyEvent>
#include <QResizeEvent>
#include <QScreen>
#include <QSet>
#include <QSplitter>
#include <QStandardPaths>
#include <QStatusBar>
#include <QTime>
#include <QTimer>
#include <QToolBar>
#include <QVBoxLayout>

#include <algorithm>
#include <fstream>

namespace vitscope::ui {

namespace {

// The classes file of the spurious demo: the eight shape prompts, each voting for its group.
QString writeGroupClasses(const QString& dir) {
    const QString path = dir + "/groups.tsv";
    std::ofstream out(path.toStdString());
    for (const char* s : {"circle", "square", "hexagon", "heart"}) out << "0\ta " << s << "\n";
    for (const char* s : {"triangle", "diamond", "star", "cross"}) out << "1\ta " << s << "\n";
    return path;
}

}  // namespace

namespace {
StartOptions resolved(StartOptions o) {
    if (o.dataDir.isEmpty()) o.dataDir = QStandardPaths::writableLocation(QStandardPaths::AppDataLocation);
    QDir().mkpath(o.dataDir);
    return o;
}
}  // namespace

MainWindow::MainWindow(const StartOptions& options, QWidget* parent)
    : QMainWindow(parent), m_options(resolved(options)), m_engine(m_options.dataDir + "/caches") {
    m_thumbs = new Thumbnails(72, this);
    buildUi();
    buildMenus();
    connectEngine();
    QSettings settings;
    if (m_options.restoreSettings) {
        restoreGeometry(settings.value("window/geometry").toByteArray());
        restoreState(settings.value("window/state").toByteArray());
        m_colormap->setCurrentText(settings.value("view/colormap", "viridis").toString());
        m_opacity->setValue(settings.value("view/opacity", 55).toInt());
        m_method->setCurrentText(settings.value("view/method", "decomposition").toString());
        if (m_options.model.isEmpty()) m_options.model = settings.value("session/model").toString();
        if (m_options.dataset.isEmpty()) m_options.dataset = settings.value("session/dataset").toString();
    }
    // A model that no longer loads (moved, deleted) falls back to the bundled one: see the
    // "model" failure handler in connectEngine().
    if (m_options.model.isEmpty()) m_options.model = QString::fromStdString(bundledModelDir("shapes-clip"));
    if (!m_options.text.isEmpty()) m_text->setEditText(m_options.text);
    openModel(m_options.model);
}

MainWindow::~MainWindow() {
    // Members (the engine) die before the base class deletes the child widgets, and a widget
    // being deleted can still emit (a combo box losing its view): silence them all first.
    disconnect(&m_engine, nullptr, this, nullptr);
    // The log sink stays on the logger (the worker may still be logging; changing the sink list
    // then would race); it holds a guarded pointer and goes quiet once the panel is gone.
    for (QObject* o : findChildren<QObject*>()) o->blockSignals(true);
}

void MainWindow::buildUi() {
    setWindowTitle("vitscope");
    setObjectName("vitscopeMain");
    setAcceptDrops(false);
    // Left: the head grid and its metric.
    auto* left = new QWidget;
    auto* leftLayout = new QVBoxLayout(left);
    m_metric = new QComboBox;
    m_metric->addItems({tr("Direct effect (this image)"), tr("Score for the text (this image)"), tr("TextSpan variance explained"), tr("Property score")});
    m_property = new QLineEdit;
    m_property->setPlaceholderText(tr("property: color, shape, texture..."));
    m_property->setObjectName("propertyBox");
    m_metric->setObjectName("metricBox");
    m_grid = new HeadGrid;
    leftLayout->addWidget(new QLabel(tr("Grid colour")));
    leftLayout->addWidget(m_metric);
    leftLayout->addWidget(m_property);
    leftLayout->addWidget(m_grid, 1);
    // Centre: the canvas with its controls.
    auto* centre = new QWidget;
    auto* centreLayout = new QVBoxLayout(centre);
    auto* controls = new QHBoxLayout;
    m_text = new QComboBox;
    m_text->setEditable(true);
    m_text->setInsertPolicy(QComboBox::NoInsert);
    m_text->setMinimumWidth(220);
    m_text->lineEdit()->setPlaceholderText(tr("type a text, e.g. a red circle"));
    m_words = new WordCompleter(m_text->lineEdit(), this);
    m_text->lineEdit()->installEventFilter(this);
    m_text->setObjectName("textBox");
    // Suggestions from the pool as a popup: typing never has its text completed in place.
    auto* completer = new QCompleter(m_text->model(), m_text);
    completer->setCompletionMode(QCompleter::PopupCompletion);
    completer->setFilterMode(Qt::MatchContains);
    completer->setCaseSensitivity(Qt::CaseInsensitive);
    m_text->setCompleter(completer);
    m_method = new QComboBox;
    m_method->setObjectName("methodBox");
    m_method->addItems({"decomposition", "surgery", "raw", "attention", "rollout", "gradcam", "chefer", "legrad"});
    m_method->setItemData(0, tr("Each image token's direct contribution to the image's score for the text: the class token's "
                                "attention to it times its value, through every (or the selected) head. Not a segmentation "
                                "of where the text is."), Qt::ToolTipRole);
    m_method->setItemData(1, tr("CLIP Surgery: value-value attention in the last blocks, minus the features shared by all "
                                "texts (the empty prompt, or the reference texts)"), Qt::ToolTipRole);
    m_method->setItemData(2, tr("Similarity of each final token to the text"), Qt::ToolTipRole);
    m_method->setItemData(3, tr("Last layer's class-token attention (text-independent)"), Qt::ToolTipRole);
    m_method->setItemData(4, tr("Attention rollout over all layers (text-independent)"), Qt::ToolTipRole);
    m_method->setItemData(5, tr("Grad-CAM on the last block's tokens: their features weighted by the text score's mean "
                                "gradient, ReLU"), Qt::ToolTipRole);
    m_method->setItemData(6, tr("Chefer et al. 2021: attention weighted by its gradient (positive part, mean over heads), "
                                "propagated through every layer from the identity"), Qt::ToolTipRole);
    m_method->setItemData(7, tr("LeGrad: each of the last two layers' own gradient of the text score with respect to its "
                                "attention, averaged over heads and queries, summed"), Qt::ToolTipRole);
    m_onlySelected = new QCheckBox(tr("Selected heads only"));
    m_onlySelected->setObjectName("onlySelectedHeads");
    m_perHead = new QCheckBox(tr("Per-head maps"));
    m_opacity = new QSlider(Qt::Horizontal);
    m_opacity->setRange(0, 100);
    m_opacity->setValue(55);
    m_opacity->setMinimumWidth(70);
    m_opacity->setMaximumWidth(110);
    m_colormap = new QComboBox;
    m_colormap->addItems(colormapNames());
    // Two rows: the text and method, then the view settings (one row of all of them did not fit
    // beside the docks at 1024 px and cut its labels).
    auto* viewRow = new QHBoxLayout;
    controls->addWidget(m_text, 1);
    controls->addWidget(m_method);
    viewRow->addWidget(m_onlySelected);
    viewRow->addWidget(m_perHead);
    viewRow->addStretch(1);
    m_opacityLabel = new QLabel(tr("opacity"));
    m_opacityLabel->setObjectName("opacityLabel");
    viewRow->addWidget(m_opacityLabel);
    viewRow->addWidget(m_opacity);
    viewRow->addWidget(m_colormap);
    m_canvas = new ImageCanvas;
    m_classroom = new Classroom;
    m_classroom->hide();
    centreLayout->addWidget(m_classroom);
    centreLayout->addLayout(controls);
    centreLayout->addLayout(viewRow);
    centreLayout->addWidget(m_canvas, 1);
    auto* split = new QSplitter;
    split->addWidget(left);
    split->addWidget(centre);
    split->setStretchFactor(1, 1);
    setCentralWidget(split);
    // Docks.
    m_headPanel = new HeadPanel(m_thumbs);
    m_ledger = new LedgerView;
    m_gallery = new Gallery(m_thumbs);
    m_ablation = new AblationPanel;
    m_log = new QPlainTextEdit;
    m_log->setReadOnly(true);
    m_log->setMaximumBlockCount(2000);
    m_logSink = attachLogPanel(m_log);
    // Panels with tall or wide content scroll inside their dock, so the window holds at 1024 x 700.
    auto dock = [this](const QString& title, const QString& name, QWidget* w, Qt::DockWidgetArea area, bool scroll = false) {
        auto* d = new QDockWidget(title, this);
        d->setObjectName(name);
        if (scroll) {
            auto* area = new QScrollArea;
            area->setWidget(w);
            area->setWidgetResizable(true);
            area->setFrameShape(QFrame::NoFrame);
            d->setWidget(area);
        } else {
            d->setWidget(w);
        }
        addDockWidget(area, d);
        d->installEventFilter(this);
        return d;
    };
    auto* headDock = dock(tr("Head"), "headDock", m_headPanel, Qt::RightDockWidgetArea, true);
    auto* ledgerDock = dock(tr("Completeness ledger"), "ledgerDock", m_ledger, Qt::RightDockWidgetArea);
    auto* galleryDock = dock(tr("Retrieval"), "galleryDock", m_gallery, Qt::BottomDockWidgetArea);
    auto* ablationDock = dock(tr("Ablation"), "ablationDock", m_ablation, Qt::BottomDockWidgetArea, true);
    auto* logDock = dock(tr("Log"), "logDock", m_log, Qt::BottomDockWidgetArea);
    tabifyDockWidget(galleryDock, ablationDock);
    tabifyDockWidget(ablationDock, logDock);
    galleryDock->raise();
    tabifyDockWidget(headDock, ledgerDock);
    headDock->raise();
    // Dock sizes apply once the window is laid out.
    QTimer::singleShot(0, this, [this, galleryDock, headDock] {
        resizeDocks({galleryDock}, {height() * 2 / 5}, Qt::Vertical);  // the ablation panel fits at 950 px
        resizeDocks({headDock}, {std::min(420, width() * 3 / 10)}, Qt::Horizontal);
    });
    // Status bar: model and device, the running job, progress with cancel.
    m_statusModel = new QLabel(tr("no model"));
    m_statusJob = new QLabel;
    m_progress = new QProgressBar;
    m_progress->setMaximumWidth(220);
    m_progress->hide();
    m_cancel = new QPushButton(tr("Cancel"));
    m_cancel->hide();
    statusBar()->addWidget(m_statusModel, 1);
    statusBar()->addPermanentWidget(m_statusJob);
    statusBar()->addPermanentWidget(m_progress);
    statusBar()->addPermanentWidget(m_cancel);
    // 1400 x 900, or the screen's free area when that is smaller (a 1024 x 768 projector).
    const QRect free = screen() ? screen()->availableGeometry() : QRect(0, 0, 1400, 900);
    resize(std::min(1400, free.width()), std::min(900, free.height()));

    connect(m_cancel, &QPushButton::clicked, this, [this] {
        if (m_longJob) m_engine.cancel(m_longJob);
    });
    connect(m_canvas, &ImageCanvas::fileDropped, this, [this](const QString& path) {
        QFileInfo info(path);
        if (info.isDir()) {
            // A folder with a model in it opens the model; otherwise it is a dataset.
            if (QFileInfo::exists(path + "/open_clip_config.json") || QFileInfo::exists(path + "/config.json")) openModel(path);
            else openDataset(path);
        } else if (QStringList{"safetensors", "pt", "pth", "bin", "ckpt"}.contains(info.suffix().toLower())) {
            openModel(path);
        } else {
            openImage(path);
        }
    });
    connect(m_text->lineEdit(), &QLineEdit::returnPressed, this, [this] {
        requestHeatmap();
        requestLedger();
    });
    connect(m_text, &QComboBox::textActivated, this, [this] {
        requestHeatmap();
        requestLedger();
    });
    connect(m_method, &QComboBox::currentTextChanged, this, [this] { requestHeatmap(); });
    connect(m_onlySelected, &QCheckBox::toggled, this, [this] { requestHeatmap(); });
    connect(m_perHead, &QCheckBox::toggled, this, [this] { requestHeatmap(); });
    connect(m_opacity, &QSlider::valueChanged, this, [this](int v) { m_canvas->setOpacity(v / 100.0); });
    connect(m_colormap, &QComboBox::currentTextChanged, this, [this](const QString& name) {
        m_canvas->setColormap(colormapFromName(name));
        m_grid->setColormap(colormapFromName(name));
    });
    connect(m_metric, &QComboBox::currentIndexChanged, this, [this] { requestMetric(); });
    connect(m_property, &QLineEdit::returnPressed, this, [this] {
        m_metric->setCurrentIndex(3);
        requestMetric();
    });
    connect(m_grid, &HeadGrid::headActivated, this, &MainWindow::showHeadPanel);
    connect(m_grid, &HeadGrid::mlpActivated, this, [this](int row) {
        const QString mlp = m_grid->mlpName(row);
        const float v = row >= 0 && row < int(m_normMlp.size()) ? m_normMlp[std::size_t(row)] : std::nanf("");
        QString detail = std::isfinite(v) ? tr("direct-effect norm %1 on this image. ").arg(v, 0, 'g', 4) : QString();
        detail += m_datasetReady ? tr("TextSpan describes heads, not MLPs; below, the dataset's images where this MLP writes the most.")
                                 : tr("TextSpan describes heads, not MLPs; open a dataset for the images where it writes the most.");
        m_headPanel->showMlp(mlp, detail);
        raiseDockOf(m_headPanel);
        if (!m_datasetReady) {
            emit headPanelReady();
            return;
        }
        const std::string name = mlp.toStdString();
        m_engine.submit("topimages", [name](Explorer& x, const JobContext&) { return QVariant::fromValue(x.mlpTopImages(name, 12)); });
    });
    connect(m_grid, &HeadGrid::selectionChanged, this, [this](const QList<HeadId>& heads) {
        QStringList names;
        for (const HeadId& h : heads) names << h.name();
        m_gallery->setHeadsLabel(names.join(", "));
        // The shown results must answer the heads shown: run the last query again through them.
        if (!m_lastQuery.isEmpty()) m_lastQueryIsImage ? runImageRetrieval(m_lastQuery) : runRetrieval(m_lastQuery);
        if (m_onlySelected->isChecked() || m_perHead->isChecked()) requestHeatmap();
    });
    connect(m_headPanel, &HeadPanel::retrieveRequested, this, [this](int l, int h) {
        m_grid->setSelection({HeadId{l, h}});
        const HeadDescription* d = nullptr;
        for (const HeadDescription& x : m_descriptions)
            if (x.layer == l && x.index == h) d = &x;
        runRetrieval(!m_text->currentText().trimmed().isEmpty() ? m_text->currentText().trimmed()
                     : d && !d->picks.empty()                   ? QString::fromStdString(d->picks.front().text)
                                                                : QString("an object"));
    });
    connect(m_headPanel, &HeadPanel::imageActivated, this, &MainWindow::openImage);
    connect(m_gallery, &Gallery::imageActivated, this, &MainWindow::openImage);
    connect(m_gallery, &Gallery::textQuery, this, &MainWindow::runRetrieval);
    connect(m_gallery, &Gallery::imageQuery, this, &MainWindow::runImageRetrieval);
    connect(m_ablation, &AblationPanel::demoRequested, this, &MainWindow::loadSpuriousDemo);
    connect(m_ablation, &AblationPanel::ablationChanged, this, [this](const QStringList& heads) {
        std::vector<std::string> names;
        for (const QString& h : heads) names.push_back(h.toStdString());
        m_engine.submit("ablate", [names](Explorer& x, const JobContext&) { return QVariant::fromValue(x.ablate(names)); });
    });
    connect(m_ablation, &AblationPanel::discoverRequested, this, [this](int k) {
        std::vector<std::string> spurious, core;
        for (const QString& t : m_ablation->spuriousTexts()) spurious.push_back(t.toStdString());
        for (const QString& t : m_ablation->coreTexts()) core.push_back(t.toStdString());
        if (spurious.empty() || core.empty()) {
            showError(tr("discovery needs spurious and core descriptions (Ablation panel)"));
            return;
        }
        m_engine.submit("discover", [spurious, core, k](Explorer& x, const JobContext&) { return QVariant::fromValue(x.discoverSpurious(spurious, core, k)); });
    });
    connect(m_ablation, &AblationPanel::taskRequested, this,
            [this](const QString& labels, const QString& column, const QString& classes, const QStringList& groups, const QString& reference) {
                if (!m_datasetReady) {
                    showError(tr("open a dataset first (File > Open image folder as dataset)"));
                    return;
                }
                if (labels.isEmpty() || classes.isEmpty() || reference.isEmpty()) {
                    showError(tr("an ablation task needs labels.csv, a classes file and a reference image folder"));
                    return;
                }
                AblationTask task;
                task.labels = labels.toStdString();
                task.labelColumn = column.isEmpty() ? "label" : column.toStdString();
                task.classes = classes.toStdString();
                for (const QString& g : groups) task.groupColumns.push_back(g.toStdString());
                task.referenceImages = reference.toStdString();
                m_longJob = m_engine.submit("task", [task](Explorer& x, const JobContext& job) {
                    x.setAblationTask(task, job.staged("caching the reference images (the means)"));
                    return QVariant::fromValue(x.ablate({}));
                });
                m_statusJob->setText(tr("setting up the ablation task (caching the reference images)"));
            });
    connect(m_classroom, &Classroom::stepChanged, this, [this](int step) {
        m_canvas->setPatchGrid(step == Classroom::Patches ? m_image.gridH : 0, step == Classroom::Patches ? m_image.gridW : 0);
        if (step == Classroom::Patches) m_canvas->clearMap();
        if (step == Classroom::Heads) {
            m_metric->setCurrentIndex(0);
            if (m_strongestHead.layer >= 0) m_grid->setSelection({m_strongestHead});  // the head the step names
        }
        if (step == Classroom::Layers) raiseDockOf(m_ledger);
        if (step == Classroom::Text) requestHeatmap();
    });
}

void MainWindow::buildMenus() {
    QMenu* file = menuBar()->addMenu(tr("&File"));
    file->addAction(tr("Open &model file..."), QKeySequence("Ctrl+M"), this, [this] {
        const QString f = QFileDialog::getOpenFileName(this, tr("Open model"), {}, tr("Checkpoints (*.safetensors *.pt *.pth *.bin *.ckpt);;All files (*)"));
        if (!f.isEmpty()) openModel(f);
    });
    file->addAction(tr("Open model &folder..."), this, [this] {
        const QString d = QFileDialog::getExistingDirectory(this, tr("Open model folder"));
        if (!d.isEmpty()) openModel(d);
    });
    m_discoveredMenu = file->addMenu(tr("&Discovered models"));
    connect(m_discoveredMenu, &QMenu::aboutToShow, this, [this] {
        m_discoveredMenu->clear();
        m_discoveredMenu->addAction(tr("Bundled: shapes-clip"), this, [this] { openModel(QString::fromStdString(bundledModelDir("shapes-clip"))); });
        m_discoveredMenu->addAction(tr("Bundled: shapes-vit (through its aligner)"), this, [this] { openModel(QString::fromStdString(bundledModelDir("shapes-vit"))); });
        m_discoveredMenu->addAction(tr("Bundled: shapes-swin (Swin, through its aligner)"), this, [this] { openModel(QString::fromStdString(bundledModelDir("shapes-swin"))); });
        m_discoveredMenu->addAction(tr("Bundled: shapes-clip-spurious"), this, [this] { openModel(QString::fromStdString(bundledModelDir("shapes-clip-spurious"))); });
        m_discoveredMenu->addSeparator();
        const std::vector<std::string> found = discoveredModels();
        if (found.empty()) m_discoveredMenu->addAction(tr("(nothing in the Hugging Face cache or ~/.cache/clip)"))->setEnabled(false);
        for (const std::string& m : found) {
            const QString q = QString::fromStdString(m);
            m_discoveredMenu->addAction(q, this, [this, q] { openModel(q); });
        }
    });
    file->addAction(tr("Open &image..."), QKeySequence::Open, this, [this] {
        const QString f = QFileDialog::getOpenFileName(this, tr("Open image"), {}, tr("Images (*.png *.jpg *.jpeg *.bmp *.webp *.tif *.tiff);;All files (*)"));
        if (!f.isEmpty()) openImage(f);
    });
    file->addAction(tr("Open image f&older as dataset..."), QKeySequence("Ctrl+D"), this, [this] {
        const QString d = QFileDialog::getExistingDirectory(this, tr("Image folder"));
        if (!d.isEmpty()) openDataset(d);
    });
    m_recentMenu = file->addMenu(tr("&Recent"));
    refreshRecentMenu();
    file->addSeparator();
    QMenu* exportMenu = file->addMenu(tr("&Export figure"));
    const QList<QPair<QString, QString>> views{{tr("Image and heatmap..."), "canvas"}, {tr("Head grid..."), "grid"},
                                              {tr("Ledger chart..."), "ledger"},       {tr("Head descriptions chart..."), "head"},
                                              {tr("Ablation chart..."), "ablation"},   {tr("Whole window..."), "window"}};
    for (const auto& [label, view] : views) {
        const QString v = view;
        exportMenu->addAction(label, this, [this, v] { dialogExport(v); });
    }
    exportMenu->actions().first()->setShortcut(QKeySequence("Ctrl+E"));
    exportMenu->actions().first()->setObjectName("exportCanvasAction");
    exportMenu->addAction(tr("Figure builder (texts x heads)..."), QKeySequence("Ctrl+Shift+E"), this, [this] { figureBuilder(); });
    QMenu* data = file->addMenu(tr("Export &numbers"));
    for (const auto& [label, what] : QList<QPair<QString, QString>>{{tr("Heatmap (patch scores)..."), "heatmap"}, {tr("Grid metric..."), "grid"}, {tr("Ledger..."), "ledger"}}) {
        const QString w = what;
        data->addAction(label, this, [this, w] {
            const QString path = QFileDialog::getSaveFileName(this, tr("Export numbers"), w + ".csv", tr("CSV (*.csv);;JSON (*.json);;NumPy (*.npy)"));
            if (path.isEmpty()) return;
            const QString err = exportData(w, path);
            if (!err.isEmpty()) showError(err);
            else statusBar()->showMessage(tr("Wrote %1 and its record %1.json").arg(path), 5000);
        });
    }
    file->addSeparator();
    file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);

    QMenu* analysis = menuBar()->addMenu(tr("&Analysis"));
    analysis->addAction(tr("&Describe heads (TextSpan)"), this, [this] { describeHeads(); });
    analysis->addAction(tr("TextSpan &settings..."), this, [this] { textSpanSettings(); });
    analysis->addAction(tr("&Retrieve by the current text"), QKeySequence("Ctrl+R"), this, [this] { runRetrieval(m_text->currentText().trimmed()); });
    analysis->addAction(tr("Reference texts for heatmaps..."), this, [this] {
        const QString f = QFileDialog::getOpenFileName(this, tr("Reference texts (one per line)"));
        if (!f.isEmpty()) loadReferenceTexts(f);
    });
    m_subtractReference = analysis->addAction(tr("Subtract the reference texts' mean from heatmaps"));
    m_subtractReference->setCheckable(true);
    m_subtractReference->setEnabled(false);
    m_subtractReference->setToolTip(tr("Load reference texts first (Analysis > Reference texts for heatmaps...)"));
    connect(m_subtractReference, &QAction::toggled, this, [this] { requestHeatmap(); });
    QMenu* view = menuBar()->addMenu(tr("&View"));
    QAction* classroom = view->addAction(tr("&Classroom mode"), QKeySequence(Qt::Key_F11), this, [this] { setClassroomMode(!m_classroomOn); });
    classroom->setCheckable(true);
    // The model's own preprocessing (the reference's: shortest side resized, centre crop) by
    // default; the whole image squashed to the input size on demand, remembered.
    m_wholeImage = view->addAction(tr("&Whole image (squashed, no centre crop)"));
    m_wholeImage->setObjectName("wholeImageAction");
    m_wholeImage->setCheckable(true);
    m_wholeImage->setChecked(QSettings().value("view/wholeImage", false).toBool());
    m_wholeImage->setToolTip(tr("Analyse the whole image resized to the model's input square instead of the centre crop the "
                                "model's preprocessing makes (the shapes distort when the image is not square)"));
    connect(m_wholeImage, &QAction::toggled, this, [this](bool on) {
        QSettings().setValue("view/wholeImage", on);
        if (m_canvas->hasImage()) openImage(m_canvas->imagePath());
    });
    view->addSeparator();
    for (QDockWidget* d : findChildren<QDockWidget*>()) view->addAction(d->toggleViewAction());
    QMenu* help = menuBar()->addMenu(tr("&Help"));
    help->addAction(tr("&Guide to the views"), QKeySequence(Qt::Key_F1), this, [this] {
        QMessageBox box(QMessageBox::NoIcon, tr("Guide to the views"), guideText(), QMessageBox::Ok, this);
        box.setTextFormat(Qt::RichText);
        box.exec();
    });
    help->addAction(tr("&Keyboard shortcuts"), this, [this] {
        QMessageBox box(QMessageBox::NoIcon, tr("Keyboard shortcuts"), shortcutsText(), QMessageBox::Ok, this);
        box.setTextFormat(Qt::RichText);
        box.exec();
    });
    help->addSeparator();
    help->addAction(tr("&About vitscope"), this, [this] {
        QMessageBox::about(this, tr("About vitscope"),
                           tr("vitscope 0.1.0: understanding vision transformers through text.\n"
                              "Decomposes a ViT's image representation into layers, heads, MLPs and tokens, in CLIP's image-text space."));
    });
}

QString MainWindow::shortcutsText() const {
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
    for (QAction* a : menuBar()->actions())
        if (a->menu()) walk(a->menu());
    rows << tr("<tr><td><b>Left / Right</b></td><td>Classroom mode: previous / next step (outside the text box)</td></tr>")
         << tr("<tr><td><b>Esc</b></td><td>Leave classroom mode</td></tr>")
         << tr("<tr><td><b>Click / Ctrl-click / Shift-click</b></td><td>Head grid: select, toggle, extend</td></tr>");
    return "<table cellspacing=6>" + rows.join("") + "</table>";
}

QString MainWindow::guideText() const {
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

void MainWindow::connectEngine() {
    connect(&m_engine, &Engine::finished, this, &MainWindow::onFinished);
    connect(&m_engine, &Engine::failed, this, [this](quint64 id, const QString& kind, const QString& msg) {
        if (id == m_longJob) {
            m_longJob = 0;
            m_progress->hide();
            m_cancel->hide();
            m_statusJob->clear();
        }
        if (kind == "dataset") m_datasetReady = false;
        const bool logged = !(msg == m_lastFailure && m_lastFailureAt.isValid() && m_lastFailureAt.elapsed() < 3000);
        m_lastFailure = msg;
        m_lastFailureAt.start();
        // "opening MODEL" must not outlive a load that failed.
        if (kind == "model" && m_statusJob->text().startsWith(tr("opening "))) m_statusJob->clear();
        // What the canvas shows stays, with the error beside it saying what it still shows.
        if (kind == "heatmap" && m_canvas->hasImage() && !m_lastHeatmap.text.empty()) {
            showError(tr("%1 (the map shown is still the one for \"%2\")").arg(msg, QString::fromStdString(m_lastHeatmap.text)), true, logged);
            return;
        }
        if (kind == "image" && m_canvas->hasImage()) {
            showError(tr("%1 (still showing %2)").arg(msg, QFileInfo(m_canvas->imagePath()).fileName()), true, logged);
            return;
        }
        const bool onCanvas = kind == "heatmap" || kind == "image" || kind == "model";
        if (kind == "reference") {
            // Unreadable reference texts: nothing to subtract, and nothing to reload for the next model.
            m_referenceFile.clear();
            m_referenceCount = 0;
            m_subtractReference->setChecked(false);
            m_subtractReference->setEnabled(false);
        }
        showError(msg, onCanvas, logged);
        const QString bundled = QString::fromStdString(bundledModelDir("shapes-clip"));
        if (kind == "model" && m_model.layers == 0 && !bundled.isEmpty() && QFileInfo(m_options.model) != QFileInfo(bundled)) {
            m_options.model = bundled;
            m_options.dataset.clear();
            openModel(bundled);
        }
    });
    connect(&m_engine, &Engine::cancelled, this, [this](quint64 id, const QString& kind) {
        if (id == m_longJob) {
            m_longJob = 0;
            m_progress->hide();
            m_cancel->hide();
        }
        m_statusJob->setText(tr("%1 cancelled (finished chunks are kept)").arg(jobLabel(kind)));
        spdlog::info("{} cancelled", jobLabel(kind).toStdString());
    });
    connect(&m_engine, &Engine::started, this, [](quint64, const QString& kind) { spdlog::info("{}...", jobLabel(kind).toStdString()); });
    connect(&m_engine, &Engine::progress, this, [this](quint64 id, const QString& kind, const QString& stage, qint64 done, qint64 total, double rate, double eta) {
        if (id != m_longJob) return;
        // The job's phase as core names it ("3/4 caching the test split"), else the job.
        const QString what = stage.isEmpty() ? jobLabel(kind) : stage;
        m_progress->show();
        m_cancel->show();
        m_progress->setRange(0, static_cast<int>(std::min<qint64>(total, 1 << 30)));
        m_progress->setValue(static_cast<int>(std::min<qint64>(done, 1 << 30)));
        m_statusJob->setText(tr("%1: %2 / %3, %4/s, ETA %5 s").arg(what).arg(done).arg(total).arg(rate, 0, 'f', 1).arg(eta, 0, 'f', 0));
    });
}

void MainWindow::raiseDockOf(QWidget* w) {
    for (QWidget* p = w; p; p = p->parentWidget())
        if (auto* d = qobject_cast<QDockWidget*>(p)) {
            d->raise();
            return;
        }
}

QString MainWindow::jobLabel(const QString& kind) {
    // The engine's job kinds as the log and the status bar say them.
    static const QHash<QString, QString> labels{
        {"ablate", tr("ablating heads")},          {"dataset", tr("caching the dataset")},
        {"demo", tr("making the demo world")},     {"describe", tr("describing heads (TextSpan)")},
        {"discover", tr("looking for models")},    {"figure", tr("drawing the figure")},
        {"heatmap", tr("computing the heatmap")},  {"image", tr("decomposing the image")},
        {"ledger", tr("computing the ledger")},    {"model", tr("opening the model")},
        {"property", tr("scoring the property")},  {"reference", tr("embedding the reference texts")},
        {"retrieve", tr("retrieving images")},     {"task", tr("setting up the ablation task")},
        {"topimages", tr("finding the head's top images")}};
    return labels.value(kind, kind);
}

void MainWindow::showError(const QString& message, bool onCanvas, bool logged) {
    m_lastError = message;
    if (logged) spdlog::error("{}", message.toStdString());  // the log panel and the terminal both hear it
    statusBar()->showMessage(message, 10000);
    if (onCanvas) m_canvas->setMessage(message);
    emit errorShown(message);
}

QString MainWindow::statusText() const { return m_statusModel->text() + " | " + m_statusJob->text(); }

void MainWindow::openModel(const QString& spec) {
    const std::string s = spec.toStdString(), device = m_options.device.toStdString();
    m_statusJob->setText(tr("opening %1").arg(spec));
    m_engine.submit("model", [s, device](Explorer& x, const JobContext&) { return QVariant::fromValue(x.openModel(s, device)); });
}

void MainWindow::openImage(const QString& path) {
    if (path.isEmpty()) return;
    const std::string p = path.toStdString();
    submitImage([p](Explorer& x) { return x.analyseImage(p); });
}

void MainWindow::submitImage(std::function<ImageResult(Explorer&)> analyse) {
    // Every image job analyses under View > Whole image as it is when the job is asked for.
    m_engine.submit("image", [analyse = std::move(analyse), whole = m_wholeImage->isChecked()](Explorer& x, const JobContext&) {
        x.setWholeImage(whole);
        return QVariant::fromValue(analyse(x));
    });
}

void MainWindow::openDataset(const QString& folder) {
    m_datasetReady = false;
    m_datasetFolder = folder;
    const std::string f = folder.toStdString();
    // The bundled world is generated on first use (only in vitscope's own data folder: a user's
    // folder is never written to).
    const bool world = QFileInfo(folder) == QFileInfo(m_options.dataDir + "/shapes-world/images");
    const std::string worldDir = QFileInfo(folder).path().toStdString();
    const std::string convention = QSettings().value("textspan/convention", "exact").toString().toStdString();
    m_longJob = m_engine.submit("dataset", [f, world, worldDir, convention](Explorer& x, const JobContext& job) {
        if (world) ensureShapesWorld(worldDir, 1000, 7777, "standard", job);
        return QVariant::fromValue(x.openDataset(f, job, convention));
    });
    m_statusJob->setText(tr("caching %1").arg(folder));
}

void MainWindow::setText(const QString& text) {
    m_text->setEditText(text);
    requestHeatmap();
    requestLedger();
}

void MainWindow::setMethod(const QString& method) { m_method->setCurrentText(method); }

void MainWindow::runImageRetrieval(const QString& path) {
    if (path.isEmpty()) return;
    m_lastQuery = path;
    m_lastQueryIsImage = true;
    const auto heads = selectedHeads();
    const int top = m_gallery->top();
    const std::string p = path.toStdString();
    m_engine.submit("retrieve", [p, heads, top](Explorer& x, const JobContext&) { return QVariant::fromValue(x.retrieveImage(p, heads, top)); });
}

void MainWindow::runRetrieval(const QString& text) {
    if (text.isEmpty()) return;
    m_lastQuery = text;
    m_lastQueryIsImage = false;
    m_gallery->setQueryText(text);  // the box shows what is searched (Ctrl+R, "Retrieve with this head")
    const auto heads = selectedHeads();
    const int top = m_gallery->top();
    const std::string t = text.toStdString();
    m_engine.submit("retrieve", [t, heads, top](Explorer& x, const JobContext&) { return QVariant::fromValue(x.retrieveText(t, heads, top)); });
}

void MainWindow::loadSpuriousDemo() {
    const std::string model = bundledModelDir("shapes-clip-spurious");
    if (model.empty()) {
        showError(tr("models/shapes-clip-spurious is missing from this installation"));
        return;
    }
    const QString dir = m_options.dataDir + "/spurious-demo";
    QDir().mkpath(dir);
    const std::string d = dir.toStdString(), classes = writeGroupClasses(dir).toStdString(), device = m_options.device.toStdString();
    const std::string convention = QSettings().value("textspan/convention", "exact").toString().toStdString();
    m_ablation->setTaskForm(dir + "/test/labels.csv", "group", dir + "/groups.tsv", "group,background", dir + "/train/images");
    m_ablation->setDiscoveryTexts("an object on a grass background, an object on a water background",
                                  "a circle, a square, a hexagon, a heart, a triangle, a diamond, a star, a cross");
    m_longJob = m_engine.submit("demo", [=](Explorer& x, const JobContext& job) {
        ensureShapesWorld(d + "/train", 2000, 9102, "spurious-train", job.staged("1/4 making the train split"));
        ensureShapesWorld(d + "/test", 2000, 9103, "spurious-test", job.staged("2/4 making the test split"));
        DemoLoaded r;
        r.model = x.openModel(model, device);
        r.dataset = x.openDataset(d + "/test/images", job.staged("3/4 caching the test split"), convention);
        AblationTask task;
        task.labels = d + "/test/labels.csv";
        task.labelColumn = "group";
        task.classes = classes;
        task.groupColumns = {"group", "background"};
        task.referenceImages = d + "/train/images";
        x.setAblationTask(task, job.staged("4/4 caching the train split (the means)"));
        r.outcome = x.ablate({});
        return QVariant::fromValue(r);
    });
    m_statusJob->setText(tr("loading the spurious-split demo"));
}

std::vector<std::pair<int, int>> MainWindow::selectedHeads() const {
    std::vector<std::pair<int, int>> out;
    for (const HeadId& h : m_grid->selection()) out.emplace_back(h.layer, h.head);
    return out;
}

QString MainWindow::textPoolFile() const {
    // The shapes world's own pool for its word-vocabulary models, the general pool otherwise.
    const bool shapes = QFileInfo(QString::fromStdString(m_model.spec) + "/vocab.txt").exists() ||
                        (!m_model.textModel.empty() && QFileInfo(QFileInfo(QString::fromStdString(m_model.textModel)).path() + "/vocab.txt").exists());
    return QString::fromStdString(dataFile(shapes ? "resources/shapes/text_pool.txt" : "resources/general/descriptions.txt"));
}

void MainWindow::textSpanSettings() {
    QDialog dialog(this);
    dialog.setWindowTitle(tr("TextSpan settings"));
    auto* form = new QFormLayout(&dialog);
    auto* perHead = new QSpinBox(&dialog);
    perHead->setRange(1, 100);
    perHead->setValue(QSettings().value("textspan/perHead", 10).toInt());
    perHead->setToolTip(tr("Texts chosen per head (the reference uses 10; its README runs 20)"));
    auto* rank = new QSpinBox(&dialog);
    rank->setRange(1, 4096);
    rank->setValue(QSettings().value("textspan/rank", 80).toInt());
    rank->setToolTip(tr("Texts are first projected onto the head's top singular directions (the reference uses 80; "
                        "a rank at or above the embedding dimension projects nothing)"));
    auto* convention = new QComboBox(&dialog);
    convention->addItem(tr("exact (each term centred by its own mean)"), "exact");
    convention->addItem(tr("textspan (the TextSpan reference's data)"), "textspan");
    convention->setCurrentIndex(QSettings().value("textspan/convention", "exact").toString() == "textspan" ? 1 : 0);
    convention->setToolTip(tr("The decomposition convention of the dataset caches TextSpan, ranking and retrieval read; "
                              "textspan shares the final norm's mean and offset over the layer terms and divides by the "
                              "output norm, as the reference code does. Changing it rebuilds the dataset's cache."));
    form->addRow(tr("Texts per head"), perHead);
    form->addRow(tr("Text projection rank"), rank);
    form->addRow(tr("Cached terms"), convention);
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, &dialog);
    form->addRow(buttons);
    connect(buttons, &QDialogButtonBox::accepted, &dialog, &QDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, &dialog, &QDialog::reject);
    if (dialog.exec() != QDialog::Accepted) return;
    QSettings().setValue("textspan/perHead", perHead->value());
    QSettings().setValue("textspan/rank", rank->value());
    const QString chosen = convention->currentData().toString();
    const bool reopen = chosen != QSettings().value("textspan/convention", "exact").toString();
    QSettings().setValue("textspan/convention", chosen);
    if (reopen && !m_datasetFolder.isEmpty()) openDataset(m_datasetFolder);  // describes the heads when cached
    else if (!m_model.spec.empty()) describeHeads();
}

void MainWindow::setSubtractReference(bool on) { m_subtractReference->setChecked(on); }

void MainWindow::loadReferenceTexts(const QString& file) {
    const std::string p = file.toStdString();
    m_engine.submit("reference", [p](Explorer& x, const JobContext&) {
        return QVariant(x.loadReferenceTexts(p));
    });
    m_referenceFile = file;
}

void MainWindow::describeHeads() {
    const QString pool = textPoolFile();
    if (pool.isEmpty()) {
        showError(tr("no text pool found (resources/)"));
        return;
    }
    const std::string p = pool.toStdString();
    const int perHead = QSettings().value("textspan/perHead", 10).toInt();
    const int rank = QSettings().value("textspan/rank", 80).toInt();
    m_longJob = m_engine.submit("describe", [p, perHead, rank](Explorer& x, const JobContext& job) {
        return QVariant::fromValue(x.describeHeads(p, perHead, rank, job));
    });
    m_statusJob->setText(tr("describing heads"));
}

void MainWindow::requestHeatmap() {
    if (!m_canvas->hasImage()) return;
    const QString text = m_text->currentText().trimmed();
    const QString method = m_method->currentText();
    if (text.isEmpty() && method != "attention" && method != "rollout") return;
    HeatmapRequest q;
    q.text = text.toStdString();
    q.method = method.toStdString();
    if (m_onlySelected->isChecked()) q.heads = selectedHeads();
    q.subtractReference = m_subtractReference->isChecked() && m_referenceCount > 0;
    const bool perHead = m_perHead->isChecked() && method == "decomposition";
    std::vector<std::pair<int, int>> multiples = selectedHeads();
    if (multiples.size() > 8) multiples.resize(8);
    m_engine.submit("heatmap", [q, perHead, multiples](Explorer& x, const JobContext&) {
        std::vector<HeatmapResult> out{x.heatmap(q)};
        if (perHead)
            for (const HeatmapResult& r : x.headHeatmaps(q.text, multiples)) out.push_back(r);
        return QVariant::fromValue(out);
    });
}

void MainWindow::requestLedger() {
    if (!m_canvas->hasImage()) return;
    const QString text = m_text->currentText().trimmed();
    if (text.isEmpty()) return;
    const std::string t = text.toStdString();
    m_engine.submit("ledger", [t](Explorer& x, const JobContext&) { return QVariant::fromValue(x.ledger(t)); });
}

void MainWindow::requestMetric() {
    if (m_metric->currentIndex() == 3) {
        const QString prop = m_property->text().trimmed();
        if (prop.isEmpty() || !m_datasetReady) {
            if (!prop.isEmpty()) showError(tr("property scores need a dataset (File > Open image folder)"));
            updateGridMetric();
            return;
        }
        // A name of this model's word lists or a file of texts; anything else is refused here,
        // with the names, and the grid keeps the scores and label it has.
        QStringList known;
        for (const std::string& n : m_model.propertyNames) known << QString::fromStdString(n);
        if (!known.contains(prop) && !QFileInfo(prop).isFile()) {
            showError(tr("property '%1': no word list by that name for this model (it has: %2; or give a file of texts, one per line)")
                          .arg(prop, known.join(", ")));
            updateGridMetric();
            return;
        }
        m_requestedProperty = prop;
        const std::string p = prop.toStdString();
        m_engine.submit("property", [p](Explorer& x, const JobContext& job) { return QVariant::fromValue(x.propertyScores(p, job)); });
    }
    updateGridMetric();
}

void MainWindow::updateGridMetric() {
    switch (m_metric->currentIndex()) {
    case 0: m_grid->setMetric(tr("direct-effect norm"), m_normValues, m_normMlp, m_normConv); break;
    case 1: m_grid->setMetric(tr("score for \"%1\"").arg(QString::fromStdString(m_lastLedger.text)), m_ledgerValues, {}); break;
    case 2: {
        std::vector<float> v(static_cast<std::size_t>(m_model.gridLayers() * m_model.heads), std::nanf(""));
        for (const HeadDescription& d : m_descriptions)
            if (!d.picks.empty()) v[static_cast<std::size_t>(d.layer * m_model.heads + d.index)] = static_cast<float>(d.picks.back().cumulative);
        m_grid->setMetric(tr("TextSpan variance explained"), m_descriptions.empty() ? std::vector<float>{} : v, {});
        break;
    }
    default: m_grid->setMetric(tr("property score: %1").arg(m_propertyName), m_propertyValues, m_propertyMlp, m_propertyConv); break;
    }
}

void MainWindow::showHeadPanel(const HeadId& h) {
    const HeadDescription* d = nullptr;
    for (const HeadDescription& x : m_descriptions)
        if (x.layer == h.layer && x.index == h.head) d = &x;
    m_headPanel->showHead(h.layer, h.head, d, h.name());
    raiseDockOf(m_headPanel);
    if (!m_datasetReady) {
        m_headPanel->setTopImages({});
        emit headPanelReady();
        return;
    }
    const int l = h.layer, k = h.head;
    m_engine.submit("topimages", [l, k](Explorer& x, const JobContext&) { return QVariant::fromValue(x.headTopImages(l, k, 12)); });
}

void MainWindow::keyPressEvent(QKeyEvent* e) {
    if (m_classroomOn && e->key() == Qt::Key_Escape) {
        setClassroomMode(false);
        return;
    }
    // Arrow keys step through the walkthrough, except while a text field has focus (there they
    // edit the text, even at its ends).
    QWidget* focus = QApplication::focusWidget();
    const bool typing = focus && (qobject_cast<QLineEdit*>(focus) || qobject_cast<QAbstractSpinBox*>(focus) ||
                                  qobject_cast<QPlainTextEdit*>(focus) || qobject_cast<QTextEdit*>(focus));
    if (m_classroomOn && !typing && (e->key() == Qt::Key_Right || e->key() == Qt::Key_Left || e->key() == Qt::Key_Space)) {
        m_classroom->setStep(m_classroom->step() + (e->key() == Qt::Key_Left ? -1 : 1));
        return;
    }
    QMainWindow::keyPressEvent(e);
}

namespace {

bool verticalArea(Qt::DockWidgetArea a) { return a == Qt::BottomDockWidgetArea || a == Qt::TopDockWidgetArea; }

}  // namespace

bool MainWindow::eventFilter(QObject* watched, QEvent* event) {
    // The window's Ctrl+E (export) wins over the text box's own binding of it (end of line on X11).
    if (watched == m_text->lineEdit() && event->type() == QEvent::ShortcutOverride) {
        const auto* key = static_cast<QKeyEvent*>(event);
        if (key->key() == Qt::Key_E && key->modifiers() == Qt::ControlModifier) {
            event->ignore();
            return true;
        }
    }
    auto* dock = qobject_cast<QDockWidget*>(watched);
    if (dock && event->type() == QEvent::Resize && size() == m_laidOutSize && !m_classroomOn && !dock->isFloating() && width() > 0 &&
        height() > 0)
        m_dockShare[dock] = verticalArea(dockWidgetArea(dock)) ? dock->height() / double(height()) : dock->width() / double(width());
    return QMainWindow::eventFilter(watched, event);
}

void MainWindow::resizeEvent(QResizeEvent* e) {
    QMainWindow::resizeEvent(e);
    const QSize before = m_laidOutSize;
    m_laidOutSize = e->size();
    if (m_classroomOn) {
        applyClassroomLayout();
        return;
    }
    if (!before.isValid() || isFullScreen()) return;
    // The main window's layout gives most of a change to the central widget (at 1024 x 700 the
    // canvas became a strip under docks still sized for 1400 x 900): give each docked panel its
    // share of the new size back. One dock per area (tabbed docks share one size).
    QTimer::singleShot(0, this, [this] {
        QList<QDockWidget*> vertical, horizontal;
        QList<int> heights, widths;
        QSet<Qt::DockWidgetArea> done;
        for (QDockWidget* d : findChildren<QDockWidget*>()) {
            if (d->isFloating() || !d->isVisible() || !m_dockShare.contains(d) || d->visibleRegion().isEmpty()) continue;
            const Qt::DockWidgetArea area = dockWidgetArea(d);
            if (done.contains(area)) continue;
            done.insert(area);
            if (verticalArea(area)) {
                vertical << d;
                heights << qRound(m_dockShare[d] * height());
            } else {
                horizontal << d;
                widths << qRound(m_dockShare[d] * width());
            }
        }
        if (!vertical.isEmpty()) resizeDocks(vertical, heights, Qt::Vertical);
        if (!horizontal.isEmpty()) resizeDocks(horizontal, widths, Qt::Horizontal);
    });
}

void MainWindow::closeEvent(QCloseEvent* e) {
    saveSettings();
    // A running job stops at its next check; a cache build keeps its finished chunks.
    m_engine.cancelAll();
    e->accept();
}

}  // namespace vitscope::ui
