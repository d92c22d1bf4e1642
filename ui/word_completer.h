#pragma once
// Completes the word being typed in a line edit from a word list (a word-vocabulary model's
// words): the popup lists the words that start with it, and a pick replaces just that word.
#include <QObject>
#include <QStringList>

class QCompleter;
class QLineEdit;

namespace vitscope::ui {

class WordCompleter : public QObject {
    Q_OBJECT
public:
    WordCompleter(QLineEdit* edit, QObject* parent = nullptr);
    // An empty list turns the completion off (models that read any text).
    void setWords(const QStringList& words);
    int wordCount() const { return m_words.size(); }
    QCompleter* completer() const { return m_completer; }
    // The word before the cursor and where it starts.
    QString currentWord(int* start = nullptr) const;

private:
    void onEdited();
    void insert(const QString& word);

    QLineEdit* m_edit;
    QCompleter* m_completer;
    QStringList m_words;
};

}  // namespace vitscope::ui
