#pragma once
// The image canvas: the model's input crop with a heatmap blended on top, a colorbar with the
// map's range, and a caption; accepts dropped files. Also draws small multiples (one map per
// head). Painting goes through paintTo() so that exports draw the same figure as the screen.
#include "colormap.h"

#include <QImage>
#include <QString>
#include <QStringList>
#include <QWidget>

#include <limits>
#include <vector>

namespace vitscope::ui {

struct State;
enum class Aspect : quint32;

struct MapLayer {
    QString caption;
    std::vector<float> values;  // rows x cols
    int rows = 0, cols = 0;
    float lo = 0, hi = 0;       // colour scale; lo == hi: the map's own min / max
    // A value marked on the map (its cells over it outlined) and on the shared colorbar of a row
    // of small multiples (the outlier threshold of token norms); NaN: none.
    float mark = std::numeric_limits<float>::quiet_NaN();
    // A small multiple's shorter captions, tried in order where the caption does not fit its map's
    // width ("\n" breaks a line); the whole caption is the map's tooltip.
    QStringList shortCaptions;
    int row = 0;  // small multiples: the row it is drawn in (0: the first under the main map)
};

class ImageCanvas : public QWidget {
    Q_OBJECT
public:
    explicit ImageCanvas(QWidget* parent = nullptr);

    // The session's image, map (captioned: method, text, reference subtraction, restriction) and
    // small multiples, and its errors about them.
    void render(const State& s, QFlags<Aspect> changed);
    // A figure's panel: `crop` with `map` over it, as the canvas draws them, into `target`.
    static void paintPanel(QPainter& p, const QRect& target, const QImage& crop, const MapLayer& map, double opacity,
                           ColormapKind colormap, bool colorbar);
    // Classroom mode's patches step shows the bare patches: the map stays in the state, undrawn.
    void setMapShown(bool shown);
    // The colorbar's room kept beside a plain image too: the picture keeps its size with or without a map.
    void setColorbarRoomKept(bool kept);
    void dismissMessage();  // the message strip goes until the next error
    void setOpacity(double opacity);
    void setColormap(ColormapKind kind);
    void setFontScale(double scale);
    void setPatchGrid(int rows, int cols);   // draw the patch grid (0: off)

    bool hasImage() const { return !m_crop.isNull(); }
    bool hasMap() const { return m_mapShown && !m_map.values.empty(); }
    const MapLayer& map() const { return m_map; }
    const std::vector<MapLayer>& smallMultiples() const { return m_multiples; }
    QString imagePath() const { return m_path; }
    double opacity() const { return m_opacity; }
    ColormapKind colormap() const { return m_colormap; }
    QString message() const { return m_message; }
    QString inputNote() const { return m_inputNote; }
    // Where the picture (the crop under the map) was last drawn on screen, in widget coordinates.
    QRect shownPicture() const { return m_shownPicture; }
    // The small multiples as last drawn on screen: each one's box and the caption drawn over it.
    const std::vector<QRect>& shownMultiples() const { return m_shownMultiples; }
    const QStringList& shownMultipleCaptions() const { return m_shownCaptions; }

    // Draws the canvas into `target` of any painter (screen, SVG, PDF, image).
    void paintTo(QPainter& p, const QRect& target) const;
    // The size of a figure of the canvas `height` pixels tall whose width is what the image,
    // its colorbar and labels (and the small multiples' row) take: no empty band beside them.
    QSize figureSize(int height) const;
    // Without the map's own colorbar (a figure drawing one shared bar for several panels).
    void setColorbarShown(bool shown) { m_showBar = shown; }
    // A vertical colorbar of the current colormap in `bar`, its range's ends labelled to the right
    // within `labelW` pixels.
    void paintColorbar(QPainter& p, const QRect& bar, int labelW, float lo, float hi) const;
    void paintColorbarBelow(QPainter& p, const QRect& bar, float lo, float hi) const;  // horizontal, under the picture

    QSize sizeHint() const override { return {520, 460}; }

signals:
    void fileDropped(const QString& path);

protected:
    bool event(QEvent* e) override;  // a small multiple's whole caption as its tooltip
    void paintEvent(QPaintEvent*) override;
    void dragEnterEvent(QDragEnterEvent* e) override;
    void dropEvent(QDropEvent* e) override;

private:
    void setImage(const QImage& crop, const QString& path);
    void setMap(const MapLayer& map);       // the main overlay (pixels of the crop's size)
    void setSmallMultiples(const std::vector<MapLayer>& maps);  // patch maps, e.g. one per head
    void clearMap();
    void setMessage(const QString& text);  // shown over the canvas (errors, "drop an image")
    // A grey line under the image on screen (not in exports): what of the file the model sees.
    void setInputNote(const QString& note);
    bool m_mapShown = true;
    bool m_keepBarRoom = false;
    mutable QRect m_shownPicture;  // set by drawing on the widget itself
    // captionLines: the lines the caption's band holds (0: the caption's own; a row's maps share one).
    void drawMap(QPainter& p, const QRect& box, const MapLayer& m, bool withBar, int captionLines = 0) const;
    // The small multiples' rows under the main map: their height in a body of `bodyH` x `width`,
    // and drawn into the bottom `height` pixels of `body`.
    int multiplesHeight(int bodyH, int width) const;
    void paintMultiples(QPainter& p, const QRect& body, int height) const;
    mutable std::vector<QRect> m_shownMultiples;       // set by drawing on the widget itself
    mutable QStringList m_shownCaptions, m_shownTips;  // drawn, and whole (the tooltips)
    // The cells of a patch map over its mark, outlined on the picture `img`.
    static void outlineMarked(QPainter& p, const QRect& img, const MapLayer& m);
    static void paintMark(QPainter& p, const QRect& bar, int labelW, const MapLayer& m);  // the mark on a colorbar

    QImage m_crop;
    QString m_path, m_message, m_inputNote;
    MapLayer m_map;
    std::vector<MapLayer> m_multiples;
    double m_opacity = 0.55;
    ColormapKind m_colormap = ColormapKind::Viridis;
    double m_fontScale = 1.0;
    int m_gridRows = 0, m_gridCols = 0;
    bool m_showBar = true;
};

}  // namespace vitscope::ui
