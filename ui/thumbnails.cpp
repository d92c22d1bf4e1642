#include "thumbnails.h"

#include <QColor>
#include <QPixmap>

#include <QImageReader>
#include <QMetaObject>
#include <QPointer>
#include <QThreadPool>

namespace vitscope::ui {

QPixmap thumbnailPlaceholder(const QSize& size) {
    QPixmap p(size);
    p.fill(QColor(225, 225, 225));
    return p;
}

Thumbnails::Thumbnails(int side, QObject* parent) : QObject(parent), m_side(side) {}

QImage Thumbnails::get(const QString& path) {
    if (m_cache.contains(path)) return m_cache.value(path);
    if (m_pending.contains(path)) return {};
    m_pending.insert(path, true);
    QPointer<Thumbnails> self(this);
    const int side = m_side;
    QThreadPool::globalInstance()->start([self, path, side] {
        QImageReader reader(path);
        reader.setAutoTransform(true);
        const QSize size = reader.size();
        // Huge files are shown as a placeholder, never decoded in full for a thumbnail.
        QImage img;
        if (size.isValid() && qint64(size.width()) * size.height() <= 100'000'000) {
            reader.setScaledSize(size.scaled(side, side, Qt::KeepAspectRatio));
            img = reader.read();
        }
        if (img.isNull()) {
            img = QImage(side, side, QImage::Format_RGB32);
            img.fill(Qt::lightGray);
        }
        QMetaObject::invokeMethod(
            self, [self, path, img] {
                if (!self) return;
                self->m_cache.insert(path, img);
                self->m_pending.remove(path);
                emit self->ready(path, img);
            },
            Qt::QueuedConnection);
    });
    return {};
}

}  // namespace vitscope::ui
