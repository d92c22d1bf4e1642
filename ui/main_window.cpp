#include "main_window.h"

#include "ablation_panel.h"
#include "classroom.h"
#include "classroom_mode.h"
#include "controls.h"
#include "dock_layout.h"
#include "export_controller.h"
#include "gallery.h"
#include "head_grid.h"
#include "head_panel.h"
#include "image_canvas.h"
#include "ledger_view.h"
#include "log_sink.h"
#include "menus.h"
#include "neuron_tools.h"
#include "projector.h"
#include "comparison_view.h"
#include "concept_panel.h"
#include "partner_view.h"
#include "resources.h"
#include "settings.h"
#include "status_line.h"
#include "thumbnails.h"

#include <QCloseEvent>
#include <QDir>
#include <QDockWidget>
#include <QFileInfo>
#include <QKeyEvent>
#include <QPlainTextEdit>
#include <QScreen>
#include <QSettings>
#include <QSplitter>
#include <QStandardPaths>
#include <QStatusBar>
#include <QFileDialog>
#include <QTimer>
#include <QVBoxLayout>

namespace vitscope::ui {

namespace {

StartOptions resolved(StartOptions o) {
    if (o.dataDir.isEmpty()) o.dataDir = QStandardPaths::writableLocation(QStandardPaths::AppDataLocation);
    QDir().mkpath(o.dataDir);
    QSettings s;
    if (o.restoreSettings && o.model.isEmpty()) o.model = s.value("session/model").toString();
    if (o.restoreSettings && o.dataset.isEmpty()) o.dataset = s.value("session/dataset").toString();
    // A model that no longer loads (moved, deleted) falls back to the bundled one (Session).
    if (o.model.isEmpty()) o.model = QString::fromStdString(bundledModelDir("shapes-clip"));
    return o;
}

}  // namespace

MainWindow::MainWindow(const StartOptions& options, QWidget* parent)
    : QMainWindow(parent), m_options(resolved(options)), m_session(new Session(restoredSessionOptions(m_options.dataDir, m_options.device, m_options.restoreSettings), this)) {
    setObjectName("vitscopeMain");
    setWindowTitle("vitscope");
    m_views.thumbs = new Thumbnails(72, this);
    m_docks = new DockLayout(this);
    setCentralWidget(buildCentre());
    buildDocks();
    m_status = new StatusLine(statusBar(), *m_session);
    m_export = new ExportController(this, *m_session, m_views);
    m_classroom = new ClassroomMode(this, *m_session, m_views, *m_docks);
    m_menus = new Menus(this, *m_session, *m_export, *m_classroom);
    wireViews();
    wirePanels();
    connect(m_session, &Session::changed, this, &MainWindow::onChanged);
    fitScreen();
    if (m_options.restoreSettings) {
        QSettings s;
        restoreGeometry(s.value("window/geometry").toByteArray());
        restoreState(s.value("window/state").toByteArray());
        m_views.text->setColormapName(s.value("view/colormap", "viridis").toString());
        m_views.text->setOpacity(s.value("view/opacity", 55).toInt() / 100.0);
    }
    onChanged(kAllAspects);  // the views show the empty state (and the restored settings)
    m_session->setStartFiles(m_options.image, m_options.dataset);
    if (!m_options.text.isEmpty()) m_session->setText(m_options.text);
    m_session->openModel(m_options.model);
}

MainWindow::~MainWindow() {
    // The session (and its engine's thread) goes first, while the views it would tell still exist;
    // nothing it finishes reaches them any more.
    disconnect(m_session, nullptr, this, nullptr);
    delete m_session;
    m_session = nullptr;
    for (QObject* o : findChildren<QObject*>()) o->blockSignals(true);
}

QWidget* MainWindow::buildCentre() {
    auto* left = new QWidget;
    auto* leftLayout = new QVBoxLayout(left);
    m_views.gridControls = new GridControls;
    m_views.grid = new HeadGrid;
    leftLayout->addWidget(m_views.gridControls);
    leftLayout->addWidget(m_views.grid, 1);
    auto* centre = new QWidget;
    auto* centreLayout = new QVBoxLayout(centre);
    m_views.text = new TextControls;
    m_views.canvas = new ImageCanvas;
    centreLayout->addWidget(m_views.text);
    centreLayout->addWidget(m_views.canvas, 1);
    auto* split = new QSplitter;
    split->setObjectName("centralSplit");
    split->addWidget(left);
    split->addWidget(centre);
    split->setStretchFactor(1, 1);
    // The walkthrough's banner spans the grid and the canvas (classroom mode): its texts wrap less.
    auto* central = new QWidget;
    auto* layout = new QVBoxLayout(central);
    layout->setContentsMargins(0, 0, 0, 0);
    m_views.classroom = new Classroom;
    m_views.classroom->hide();
    layout->addWidget(m_views.classroom);
    layout->addWidget(split, 1);
    return central;
}

void MainWindow::buildDocks() {
    m_views.head = new HeadPanel(m_views.thumbs);
    m_views.ledger = new LedgerView;
    m_views.gallery = new Gallery(m_views.thumbs);
    m_views.ablation = new AblationPanel;
    m_views.projector = new Projector(m_views.thumbs);
    m_views.comparison = new ComparisonView;
    m_views.partner = new PartnerView(m_views.thumbs);
    m_views.concepts = new ConceptPanel(m_views.thumbs);
    m_views.log = new QPlainTextEdit;
    m_views.log->setReadOnly(true);
    m_views.log->setMaximumBlockCount(2000);
    m_logSink = attachLogPanel(m_views.log);
    // Panels with tall or wide content scroll inside their dock, so the window holds at 1024 x 700.
    auto* head = m_docks->add(tr("Head"), "headDock", m_views.head, Qt::RightDockWidgetArea, true);
    auto* ledger = m_docks->add(tr("Completeness ledger"), "ledgerDock", m_views.ledger, Qt::RightDockWidgetArea);
    auto* gallery = m_docks->add(tr("Retrieval"), "galleryDock", m_views.gallery, Qt::BottomDockWidgetArea);
    auto* ablation = m_docks->add(tr("Ablation"), "ablationDock", m_views.ablation, Qt::BottomDockWidgetArea, true);
    auto* projector = m_docks->add(tr("Projector"), "projectorDock", m_views.projector, Qt::BottomDockWidgetArea);
    auto* log = m_docks->add(tr("Log"), "logDock", m_views.log, Qt::BottomDockWidgetArea);
    tabifyDockWidget(gallery, projector);
    auto* comparison = m_docks->add(tr("Comparison"), "comparisonDock", m_views.comparison, Qt::BottomDockWidgetArea);
    tabifyDockWidget(projector, comparison);
    // Not scrolled: it fits its floors (a scroll area gave it its wrapped title's preferred height).
    auto* partner = m_docks->add(tr("Second model"), "partnerDock", m_views.partner, Qt::BottomDockWidgetArea);
    tabifyDockWidget(comparison, partner);
    tabifyDockWidget(partner, ablation);
    tabifyDockWidget(ablation, log);
    gallery->raise();
    tabifyDockWidget(head, ledger);
    tabifyDockWidget(ledger, m_docks->add(tr("Concepts"), "conceptsDock", m_views.concepts, Qt::RightDockWidgetArea));
    head->raise();
    // Dock sizes apply once the window is laid out.
    QTimer::singleShot(0, this, [this, gallery, head] {
        resizeDocks({gallery}, {height() * 2 / 5}, Qt::Vertical);  // the ablation panel fits at 950 px
        resizeDocks({head}, {std::min(420, width() * 3 / 10)}, Qt::Horizontal);
    });
}

void MainWindow::wireViews() {
    Session* s = m_session;
    connect(m_views.grid, &HeadGrid::selectionChanged, s, &Session::select);
    connect(m_views.grid, &HeadGrid::headActivated, this, [this](const HeadId& h) {
        m_session->focusHead(h);
        raiseDockOf(m_views.head);
    });
    connect(m_views.grid, &HeadGrid::mlpActivated, this, [this](int row) {
        m_session->focusMlp(row);
        raiseDockOf(m_views.head);
    });
    connect(m_views.gridControls, &GridControls::metricChosen, s, [s](int m) { s->setMetric(static_cast<GridMetric>(m)); });
    connect(m_views.gridControls, &GridControls::propertyEntered, s, &Session::setProperty);
    connect(m_views.text, &TextControls::textEntered, s, &Session::setText);
    connect(m_views.text, &TextControls::methodChosen, s, &Session::setMethod);
    connect(m_views.text, &TextControls::onlySelectedToggled, s, &Session::setOnlySelected);
    connect(m_views.text, &TextControls::perHeadToggled, s, &Session::setPerHead);
    connect(m_views.text, &TextControls::opacityChanged, m_views.canvas, &ImageCanvas::setOpacity);
    connect(m_views.text, &TextControls::colormapChanged, this, [this](ColormapKind k) {
        m_views.canvas->setColormap(k);
        m_views.grid->setColormap(k);
    });
    connect(m_views.text, &TextControls::exportRequested, m_export, [this] { m_export->exportDialog("canvas"); });
    connect(m_views.canvas, &ImageCanvas::fileDropped, this, &MainWindow::openDropped);
}

void MainWindow::wirePanels() {
    Session* s = m_session;
    connect(m_views.head, &HeadPanel::retrieveRequested, s, &Session::retrieveWithHead);
    connect(m_views.head, &HeadPanel::imageActivated, s, &Session::openImage);
    connect(m_views.projector, &Projector::imageActivated, s, &Session::openImage);
    connect(m_views.projector, &Projector::rowsPicked, s, &Session::pickProjected);
    connect(m_views.comparison, &ComparisonView::compareRequested, s, &Session::compareHeads);
    connect(m_views.projector, &Projector::layoutRequested, s, &Session::project);
    connect(m_views.projector, &Projector::colourRequested, s, &Session::colourProjectionBy);
    connect(m_views.projector, &Projector::headActivated, m_views.grid, &HeadGrid::headActivated);  // as a grid click
    m_views.concepts->connectTo(s);
    m_views.head->neuronTools()->connectTo(s);
    // Queued: the focus change refills the list whose item is still handling its click.
    connect(m_views.head, &HeadPanel::neuronActivated, s, &Session::focusNeuron, Qt::QueuedConnection);
    connect(m_views.gallery, &Gallery::imageActivated, s, &Session::openImage);
    connect(m_views.gallery, &Gallery::textQuery, s, &Session::retrieveText);
    connect(m_views.gallery, &Gallery::imageQuery, s, &Session::retrieveImage);
    connect(m_views.gallery, &Gallery::topChanged, s, &Session::setRetrievalCount);
    m_views.ablation->connectTo(s);
    m_views.partner->connectTo(s);
}

void MainWindow::onChanged(Aspects changed) {
    const State& s = m_session->state();
    m_views.render(s, changed);
    m_status->render(s, changed);
    m_menus->render(s, changed);
    if (changed & Aspect::Model)
        setWindowTitle(s.hasModel() ? QString("vitscope - %1 (%2)").arg(QString::fromStdString(s.model.name), QString::fromStdString(s.model.family))
                                    : QString("vitscope"));
    if ((changed & Aspect::Retrieval) && !std::exchange(m_galleryFilled, !s.retrieval.result.global.empty()) && m_galleryFilled) raiseDockOf(m_views.gallery);
    if ((changed & Aspect::Ablation) && s.ablation.taskSet && s.ablation.ablated.isEmpty()) raiseDockOf(m_views.ablation);
}

void MainWindow::openDropped(const QString& path) {
    const QFileInfo info(path);
    // A folder with a model in it opens the model; otherwise it is a dataset. Checkpoint files
    // open models; anything else is an image (or is refused as one, with the reason).
    if (info.isDir()) {
        const bool model = QFileInfo::exists(path + "/open_clip_config.json") || QFileInfo::exists(path + "/config.json");
        model ? m_session->openModel(path) : m_session->openDataset(path);
    } else if (QStringList{"safetensors", "pt", "pth", "bin", "ckpt"}.contains(info.suffix().toLower())) {
        m_session->openModel(path);
    } else {
        m_session->openImage(path);
    }
}

void MainWindow::fitScreen() {
    // 1400 x 900, or the screen's free area when that is smaller (a 1024 x 768 projector); once
    // shown, the frame (title bar included) is brought inside the screen too.
    // The frame is not known before a window manager has framed the window: room for a title bar
    // is kept at once, and the check below corrects what remains.
    const QRect free = screen() ? screen()->availableGeometry() : QRect(0, 0, 1400, 900);
    const int titleBar = 40;
    resize(std::min(1400, free.width()), std::min(900, free.height() - (free.height() < 900 + titleBar ? titleBar : 0)));
    m_awaitingFrame = true;
    QTimer::singleShot(0, this, &MainWindow::fitFrame);  // where the frame is known at once
}

void MainWindow::fitFrame() {
    if (!screen() || isFullScreen()) return;
    const QRect avail = screen()->availableGeometry(), frame = frameGeometry();
    if (frame != geometry()) m_awaitingFrame = false;  // framed: this is the last correction
    const int over = frame.height() - avail.height(), overW = frame.width() - avail.width();
    if (over > 0 || overW > 0) resize(width() - std::max(0, overW), height() - std::max(0, over));
    if (over > 0 || overW > 0 || !avail.contains(frameGeometry().topLeft())) move(avail.topLeft());
}

void MainWindow::moveEvent(QMoveEvent* e) {
    QMainWindow::moveEvent(e);
    // A window manager frames the window after it is shown (the client area moves into the frame).
    if (m_awaitingFrame && frameGeometry() != geometry()) fitFrame();
}

void MainWindow::resizeEvent(QResizeEvent* e) {
    QMainWindow::resizeEvent(e);
    m_docks->windowResized(e->size());
    m_classroom->relayout();
}

void MainWindow::keyPressEvent(QKeyEvent* e) {
    if (!m_classroom->handleKey(e)) QMainWindow::keyPressEvent(e);
}

void MainWindow::saveSettings() {
    const State& st = m_session->state();
    QSettings s;
    s.setValue("window/geometry", saveGeometry());
    if (!m_classroom->isOn()) s.setValue("window/state", saveState());
    s.setValue("view/colormap", m_views.text->colormapName());
    s.setValue("view/opacity", qRound(100 * m_views.text->opacity()));
    saveSessionSettings(st);
    if (st.hasModel()) s.setValue("session/model", QString::fromStdString(st.model.spec));
    if (st.dataset.ready()) s.setValue("session/dataset", st.dataset.folder);
}

void MainWindow::closeEvent(QCloseEvent* e) {
    saveSettings();
    // A running job stops at its next check; a cache build keeps its finished chunks.
    m_session->engine().cancelAll();
    e->accept();
}

}  // namespace vitscope::ui
