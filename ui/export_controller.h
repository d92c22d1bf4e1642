#pragma once
// Export: any view as a figure (PNG / SVG / PDF), the numbers behind a view (CSV / JSON / .npy),
// and figures of several texts x heads, each with a record of how it was made. Everything comes
// from the session's state, so an export carries what is shown, for the model shown, or refuses.
#include "head_grid.h"
#include "views.h"

#include <QJsonObject>
#include <QObject>
#include <QString>
#include <QStringList>

class QMainWindow;

namespace vitscope::ui {

class Session;

class ExportController : public QObject {
    Q_OBJECT
public:
    ExportController(QMainWindow* window, Session& session, const Views& views);

    // view: canvas, grid, ledger, head, ablation, gallery, window. Empty string on success.
    QString exportView(const QString& view, const QString& path, int dpi = 150);
    QString exportData(const QString& what, const QString& path);  // what: heatmap, grid, ledger
    // One row per text; columns: the input, then one map per head in `heads` (or one map as the
    // canvas draws it when empty), captioned. Written when the maps arrive (figureWritten);
    // returns an error for what can be checked at once. `sharedScale`: one colour scale and one
    // colorbar over every map.
    QString exportPanelFigure(const QStringList& texts, const QList<HeadId>& heads, const QString& path, int dpi = 150,
                              bool sharedScale = false);
    // What is wrong with a figure's texts and heads ("" when nothing): heads that are not the
    // model's, words a word-vocabulary model does not know.
    QString checkFigure(const QStringList& texts, const QString& heads, QList<HeadId>* parsed) const;
    void figureBuilder();                     // the dialog in front of exportPanelFigure
    void exportDialog(const QString& view);   // File > Export figure > ...
    void numbersDialog(const QString& what);  // File > Export numbers > ...
    QJsonObject record(const QString& view) const;

signals:
    void figureWritten(const QString& path, const QString& error);

private:
    QString exportFolder() const;  // where export dialogs open
    QString finishExport(const QString& path, const QString& error);  // says it in the status line
    QString exportWidget(const QString& view, QWidget* w, const QString& heading, const QString& path, int dpi);
    QString exportGridData(const QString& path, QJsonObject record);
    QString exportTwoModels(const QString& path, int dpi);  // "second-model": both models' maps side by side

    QMainWindow* m_window;
    Session& m_session;
    Views m_views;
};

}  // namespace vitscope::ui
