#pragma once
// Retrieval gallery: query by text or by image; the whole representation and the selected heads
// side by side; clicking a result opens it in the canvas.
#include "explore/explorer.h"

#include <QWidget>

class QLabel;
class QLineEdit;
class QListWidget;
class QPushButton;
class QSpinBox;

namespace vitscope::ui {

struct State;
enum class Aspect : quint32;

class Thumbnails;

// A list of image thumbnails `side` pixels wide, each with its score under it (retrieval hits),
// and its filling: a click gives the path (Qt::UserRole); placeholders until a thumbnail loads.
QListWidget* hitList(int side);
void fillHitList(QListWidget* list, const std::vector<Hit>& hits, Thumbnails* thumbs);

class Gallery : public QWidget {
    Q_OBJECT
public:
    explicit Gallery(Thumbnails* thumbs, QWidget* parent = nullptr);
    void render(const State& s, QFlags<Aspect> changed);  // the session's retrieval and selection
    QString resultsFor() const;             // what the shown results answer ("" before any)
    QString query() const;
    int top() const;
    int globalCount() const;
    int restrictedCount() const;
    QString globalPath(int i) const;
    QString restrictedPath(int i) const;
    const RetrievalResult& result() const { return m_result; }

signals:
    void textQuery(const QString& text);
    void imageQuery(const QString& path);
    void imageActivated(const QString& path);
    void topChanged(int top);

private:
    void setResult(const RetrievalResult& r);
    void setQueryText(const QString& text);  // the query box shows what is searched
    void clear();                            // no results
    void setHeadsLabel(const QString& heads);
    bool throughNeurons() const;  // the result is through neurons ("mlp.L/N"), not heads

    Thumbnails* m_thumbs;
    QLabel* m_resultsFor = nullptr;
    QLineEdit* m_query;
    QPushButton* m_byText;
    QPushButton* m_byImage;
    QSpinBox* m_top;
    QLabel* m_heads;
    QListWidget* m_global;
    QListWidget* m_restricted;
    RetrievalResult m_result;
};

}  // namespace vitscope::ui
