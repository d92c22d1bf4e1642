#include "thumbnails.h"

#include <QColor>
#include <QPixmap>

#include <QImageReader>
#include <QPainter>
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
        // Every thumbnail is a side x side square (a wide or tall image centred on a light
        // background): list cells of one size fit each icon whole with its score under it.
        QImage square(side, side, QImage::Format_RGB32);
        square.fill(QColor(236, 236, 236));
        if (!img.isNull()) {
            QPainter p(&square);
            const QImage fitted = img.size() == QSize(side, side) ? img : img.scaled(side, side, Qt::KeepAspectRatio, Qt::SmoothTransformation);
            p.drawImage((side - fitted.width()) / 2, (side - fitted.height()) / 2, fitted);
        } else {
            square.fill(Qt::lightGray);
        }
        img = square;
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
