#pragma once
// The main window only wires the panels to the engine: requests go out as engine tasks, results
// come back as values and are handed to the panels. No model work happens on this thread.
#include "engine.h"
#include "head_grid.h"

#include <functional>

#include <QElapsedTimer>
#include <QFont>
#include <QHash>
#include <QMainWindow>
#include <QStringList>

#include <memory>
#include <vector>

class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QMenu;
class QAction;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QSlider;

namespace vitscope::ui {

class WordCompleter;

class AblationPanel;
class Classroom;
class Gallery;
class HeadPanel;
class ImageCanvas;
class LedgerView;
class PanelSink;
class Thumbnails;

struct StartOptions {
    QString model;      // default: the bundled shapes-clip
    QString dataset;    // image folder; default: the bundled shapes world (generated on first start)
    QString image;      // opened after the model
    QString text;       // initial text
    QString dataDir;    // default: QStandardPaths::AppDataLocation
    QString device = "auto";
    bool restoreSettings = true;
};

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(const StartOptions& options, QWidget* parent = nullptr);
    ~MainWindow() override;

    // Actions the menus and tests use (no dialogs).
    void openModel(const QString& spec);
    void openImage(const QString& path);
    void openDataset(const QString& folder);
    void setText(const QString& text);
    void setMethod(const QString& method);
    void runRetrieval(const QString& text);
    void runImageRetrieval(const QString& path);
    void loadSpuriousDemo();
    // view: canvas, grid, ledger, head, ablation, gallery, window. Empty string on success.
    QString exportView(const QString& view, const QString& path, int dpi = 150);
    QString exportData(const QString& what, const QString& path);  // what: heatmap, grid, ledger
    QString exportTextFigure(const QStringList& texts, const QString& path, int dpi = 150);
    // A grid figure: one row per text; columns: the input, then one map per head in `heads` (or
    // one map as the canvas draws it when empty), captioned. Written when the maps arrive
    // (figureReady); returns an error for what can be checked at once.
    // `sharedScale`: one colour scale (and colorbar range) over every map of the figure.
    QString exportPanelFigure(const QStringList& texts, const QList<HeadId>& heads, const QString& path, int dpi = 150,
                              bool sharedScale = false);
    void figureBuilder();  // the dialog in front of exportPanelFigure
    void setClassroomMode(bool on);
    QString shortcutsText() const;  // Help > Keyboard shortcuts (from the menus' actions)
    QString guideText() const;      // Help > Guide to the views
    // Reference texts (one per line) whose mean map text-conditioned heatmaps subtract; switched
    // on when they arrive, off with setSubtractReference(false).
    void loadReferenceTexts(const QString& file);
    void setSubtractReference(bool on);

    Engine& engine() { return m_engine; }
    HeadGrid* grid() const { return m_grid; }
    ImageCanvas* canvas() const { return m_canvas; }
    HeadPanel* headPanel() const { return m_headPanel; }
    LedgerView* ledgerView() const { return m_ledger; }
    Gallery* gallery() const { return m_gallery; }
    AblationPanel* ablationPanel() const { return m_ablation; }
    Classroom* classroom() const { return m_classroom; }
    const ModelSummary& modelSummary() const { return m_model; }
    WordCompleter* wordCompleter() const { return m_words; }
    bool datasetReady() const { return m_datasetReady; }
    const std::vector<HeadDescription>& descriptions() const { return m_descriptions; }
    QString lastError() const { return m_lastError; }
    QString statusText() const;

signals:
    void modelReady();
    void imageReady();
    void heatmapReady();
    void ledgerReady();
    void datasetReady_();
    void descriptionsReady();
    void retrievalReady();
    void ablationReady();
    void headPanelReady();
    void errorShown(const QString& message);
    void figureReady(const QString& path, const QString& error);

protected:
    void closeEvent(QCloseEvent* e) override;
    // The docks keep their share of the window when it is resized (the central view does not
    // shrink to a strip at 1024 x 700 while the docks keep their 1400 x 900 sizes).
    void resizeEvent(QResizeEvent* e) override;
    static QString jobLabel(const QString& kind);  // "heatmap" -> "computing the heatmap"
    void submitImage(std::function<ImageResult(Explorer&)> analyse);  // an "image" job under View > Whole image
    bool eventFilter(QObject* watched, QEvent* event) override;  // the docks' shares; Ctrl+E over the text box
    void applyClassroomLayout();
    void keyPressEvent(QKeyEvent* e) override;

private:
    std::vector<QWidget*> viewSettings() const;  // the toolbar's second row, off in classroom mode
    void buildUi();
    void buildMenus();
    void connectEngine();
    void onFinished(quint64 id, const QString& kind, const QVariant& result);
    void applyModel(const ModelSummary& s);
    void onModel(const QVariant& result);
    void onImage(const QVariant& result);
    void onHeatmap(const QVariant& result);
    void onLedger(const QVariant& result);
    void onDataset(const QVariant& result);
    void onDescribe(const QVariant& result);
    void onTopImages(const QVariant& result);
    void onRetrieve(const QVariant& result);
    void onProperty(const QVariant& result);
    void onAblate(const QVariant& result);
    void onDiscover(const QVariant& result);
    void onDemo(const QVariant& result);
    void onTask(const QVariant& result);
    void onReference(const QVariant& result);

    // Status bar, log and errorShown; `onCanvas`: also in the canvas's message strip (errors about
    // what the canvas shows: the image, its map, the model).
    // `logged` false: the same failure was just reported by another job (the ledger's and the
    // heatmap's for one unknown word); the views still show it, the log says it once.
    void showError(const QString& message, bool onCanvas = false, bool logged = true);
    QString exportFolder() const;  // where export dialogs open
    static void raiseDockOf(QWidget* w);  // brings the dock holding `w` to the front of its tabs
    void requestHeatmap();
    void requestLedger();
    void requestMetric();
    void describeHeads();
    void textSpanSettings();
    void showHeadPanel(const HeadId& h);
    void updateGridMetric();
    std::vector<std::pair<int, int>> selectedHeads() const;
    QString textPoolFile() const;
    QJsonObject record(const QString& view) const;
    void addRecent(const QString& key, const QString& path);
    void refreshRecentMenu();
    void saveSettings();
    QString dialogExport(const QString& view);

    StartOptions m_options;
    Engine m_engine;
    Thumbnails* m_thumbs;
    HeadGrid* m_grid;
    QComboBox* m_metric;
    QLineEdit* m_property;
    ImageCanvas* m_canvas;
    QComboBox* m_text;
    QComboBox* m_method;
    QCheckBox* m_onlySelected;
    HeadId m_strongestHead;  // of the current image (classroom step 3 highlights it)
    QString m_lastQuery;  // the gallery's last retrieval (text or image path), rerun when the heads change
    bool m_lastQueryIsImage = false;
    QAction* m_subtractReference = nullptr;  // heatmaps: text minus the reference texts' mean
    QString m_referenceFile;                 // loaded reference texts (reloaded for a new model)
    int m_referenceCount = 0;
    QCheckBox* m_perHead;
    QSlider* m_opacity;
    QLabel* m_opacityLabel;
    QComboBox* m_colormap;
    HeadPanel* m_headPanel;
    LedgerView* m_ledger;
    Gallery* m_gallery;
    AblationPanel* m_ablation;
    QPlainTextEdit* m_log;
    Classroom* m_classroom;
    QLabel* m_statusModel;
    QLabel* m_statusJob;
    QProgressBar* m_progress;
    QPushButton* m_cancel;
    QMenu* m_recentMenu = nullptr;
    QMenu* m_discoveredMenu = nullptr;

    ModelSummary m_model;
    WordCompleter* m_words = nullptr;  // the text box's word completion (word-vocabulary models)
    ImageResult m_image;
    std::vector<HeadDescription> m_descriptions;
    std::vector<float> m_normValues, m_normMlp, m_ledgerValues, m_propertyValues, m_propertyMlp;
    std::vector<float> m_normConv, m_propertyConv;  // MaxViT: the MBConv column per grid row (NaN between blocks)
    QString m_propertyName;         // the property the grid's scores are for
    QString m_requestedProperty;    // the one being computed (the grid keeps its label until it lands)
    Ledger m_lastLedger;
    HeatmapResult m_lastHeatmap;
    bool m_datasetReady = false;
    QString m_datasetFolder;
    QString m_lastError;
    quint64 m_longJob = 0;
    bool m_classroomOn = false;
    QByteArray m_normalState;
    QList<int> m_normalSplit;   // the grid / canvas splitter outside classroom mode
    QFont m_normalTooltipFont;  // restored when classroom mode ends
    // Each docked panel's share of the window (height for top / bottom docks, width for left /
    // right), taken whenever a dock changes size while the window keeps its own.
    QHash<QDockWidget*, double> m_dockShare;
    QAction* m_wholeImage = nullptr;  // View > Whole image (squash instead of the centre crop)
    QString m_lastFailure;  // the last job failure's message and when it came
    QElapsedTimer m_lastFailureAt;
    QSize m_laidOutSize;  // the window's size at its last resize (dock shares are taken at a steady size)
    std::shared_ptr<PanelSink> m_logSink;
};

}  // namespace vitscope::ui
