#pragma once
// Thumbnails decoded off the GUI thread (a thread-pool task per file) and cached by path.
#include <QHash>
#include <QImage>
#include <QPixmap>
#include <QObject>
#include <QString>

namespace vitscope::ui {

// A light grey square of `size` standing for a thumbnail that is still loading.
QPixmap thumbnailPlaceholder(const QSize& size);

class Thumbnails : public QObject {
    Q_OBJECT
public:
    explicit Thumbnails(int side, QObject* parent = nullptr);
    // The cached thumbnail, or a null image while it loads (ready() follows).
    QImage get(const QString& path);
signals:
    void ready(const QString& path, const QImage& image);
private:
    int m_side;
    QHash<QString, QImage> m_cache;
    QHash<QString, bool> m_pending;
};

}  // namespace vitscope::ui
