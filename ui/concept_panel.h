#pragma once
// The concept panel: the open image described by a concept dictionary. SpLiCE (the reference's
// non-negative lasso over a vocabulary of texts): the concepts with their weights and the
// reconstruction's cosine; a click makes the concept the text (its map follows). An SAE (vitscope,
// ViT-Prisma, SAELens or MSAE files): the image's active latents with their activations and
// names; a click shows the latent's map on the canvas, its pre-activation's split over the heads
// on the grid, and its top images; latents searched by text.
#include <QFlags>
#include <QWidget>

class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QListWidget;
class QListWidgetItem;
class QPushButton;
class QStackedWidget;

namespace vitscope::ui {

struct State;
enum class Aspect : quint32;
class Thumbnails;

class Session;

class ConceptPanel : public QWidget {
    Q_OBJECT
public:
    explicit ConceptPanel(Thumbnails* thumbs, QWidget* parent = nullptr);
    void render(const State& s, QFlags<Aspect> changed);

    QListWidget* list() const { return m_list; }
    QListWidget* topImages() const { return m_top; }
    QString statusText() const;
    QString detailText() const;
    // Its intents to the session's methods (the main window's one line of wiring for it).
    void connectTo(Session* session);

signals:
    void modeChosen(const QString& mode);                     // splice | sae
    void decomposeRequested(const QString& vocab, double l1, bool ofFocusedHead);  // vocab "": the model's default
    void saeChosen(const QString& path);
    void conceptActivated(const QString& text);  // a SpLiCE concept: the text
    void latentActivated(qint64 latent);
    void latentSearch(const QString& text);
    void imageActivated(const QString& path);

private:
    QWidget* buildSpliceRow();
    QWidget* buildSaeRow();
    void showSplice(const State& s);
    void showLatents(const State& s);
    void showDetail(const State& s);
    void activate(QListWidgetItem* item);

    Thumbnails* m_thumbs;
    QComboBox* m_mode;
    QStackedWidget* m_rows;
    QLabel* m_vocab;
    QString m_vocabFile;  // chosen with Vocabulary... ("" : the model's default)
    QDoubleSpinBox* m_l1;
    double m_stateL1 = 0.15;  // the session's l1 (an edit to another value decomposes again)
    QComboBox* m_of;  // the image, or the head in focus
    QPushButton* m_decompose;
    QLabel* m_sae;
    QLineEdit* m_search;
    QLabel* m_status;
    QListWidget* m_list;
    QLabel* m_detail;
    QListWidget* m_top;
};

}  // namespace vitscope::ui
