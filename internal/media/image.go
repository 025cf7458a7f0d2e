package media

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"

	xdraw "golang.org/x/image/draw"
	"golang.org/x/image/webp"

	"steward/internal/fault"
)

// ThumbnailSide is the longer side, in pixels, of the thumbnail CleanImage
// makes. A smaller photo keeps its size.
const ThumbnailSide = 320

const (
	jpegQuality      = 90 // a re-encoded photo: no visible loss, about the size a phone writes
	thumbnailQuality = 80
)

// imageFormat is what CleanImage needs of one file format.
type imageFormat struct {
	config func(io.Reader) (image.Config, error)
	decode func(io.Reader) (image.Image, error)
	scan   func([]byte) (layout, error)
}

var imageFormats = map[string]imageFormat{
	"image/jpeg": {jpeg.DecodeConfig, jpeg.Decode, scanJPEG},
	"image/png":  {png.DecodeConfig, png.Decode, scanPNG},
	"image/gif":  {gif.DecodeConfig, gif.Decode, scanGIF},
	"image/webp": {webp.DecodeConfig, webp.Decode, scanWebP},
}

// CleanImage reads a photo from r and writes to w a fresh encoding of its
// pixels, with its EXIF orientation applied and no metadata: JPEG (quality
// 90) for a JPEG, PNG for a PNG or a GIF (its first frame), and for a WebP
// JPEG when it is lossy and opaque, PNG otherwise. The type comes from the
// bytes, never from a name. The orientation of a WebP is not applied, as
// browsers do not apply it either.
//
// It refuses, with a coded error and before decoding any pixel, a file
// larger than lim.MaxBytes or an image larger than lim.MaxPixels or
// lim.MaxSide (fault.TooLarge); a file that is not one of the four types or
// is an animated WebP (fault.Unsupported); and a truncated or corrupt image,
// or one followed by another file such as HTML, a script, a ZIP archive or a
// PDF (fault.Invalid). Other bytes after the end of the image are dropped and
// counted in Info.Trailing. On error, whatever was written to w must be
// discarded.
//
// Info.Thumbnail holds a JPEG of the cleaned pixels, ThumbnailSide pixels
// on its longer side at most.
func CleanImage(r io.Reader, w io.Writer, lim Limits) (Info, error) {
	lim = lim.withDefaults()
	data, err := io.ReadAll(io.LimitReader(r, lim.MaxBytes+1))
	if err != nil {
		return Info{}, fmt.Errorf("media: read image: %w", err)
	}
	if int64(len(data)) > lim.MaxBytes {
		return Info{}, fault.New(fault.TooLarge, "the image file is larger than %s", bytesText(lim.MaxBytes))
	}
	kind, mime := Detect(data)
	if kind != Image {
		return Info{}, fault.New(fault.Unsupported, "the file is not a photo this service can clean (found %s): upload JPEG, PNG, GIF or WebP", mime)
	}
	format := imageFormats[mime]

	l, err := format.scan(data)
	if err != nil {
		return Info{}, corruptImage(err)
	}
	if l.animatedWebP {
		return Info{}, fault.New(fault.Unsupported, "animated WebP images are not taken: upload a still image or a GIF")
	}
	if name := appendedFile(data[l.end:]); name != "" {
		return Info{}, fault.New(fault.Invalid, "the image carries another file after its end (%s)", name)
	}
	body := data[:l.end]

	cfg, err := format.config(bytes.NewReader(body))
	if err != nil {
		return Info{}, corruptImage(err)
	}
	if err := checkSize(cfg.Width, cfg.Height, lim); err != nil {
		return Info{}, err
	}
	img, err := format.decode(bytes.NewReader(body))
	if err != nil {
		return Info{}, corruptImage(err)
	}
	img = orient(img, l.orientation)

	info := Info{Trailing: int64(len(data) - l.end)}
	b := img.Bounds()
	info.Width, info.Height = b.Dx(), b.Dy()
	switch {
	case mime == "image/jpeg", mime == "image/webp" && isYCbCr(img):
		info.MIME = "image/jpeg"
		err = jpeg.Encode(w, img, &jpeg.Options{Quality: jpegQuality})
	default:
		info.MIME = "image/png"
		err = (&png.Encoder{CompressionLevel: png.DefaultCompression}).Encode(w, img)
	}
	if err != nil {
		return Info{}, fmt.Errorf("media: write image: %w", err)
	}
	if info.Thumbnail, err = thumbnail(img, ThumbnailSide); err != nil {
		return Info{}, err
	}
	return info, nil
}

// checkSize refuses an image too large to decode, from its declared size.
func checkSize(width, height int, lim Limits) error {
	if width <= 0 || height <= 0 {
		return fault.New(fault.Invalid, "the image is truncated or corrupt")
	}
	if width > lim.MaxSide || height > lim.MaxSide || int64(width)*int64(height) > lim.MaxPixels {
		return fault.New(fault.TooLarge, "the image is %d×%d pixels: at most %d pixels a side and %g megapixels are taken",
			width, height, lim.MaxSide, float64(lim.MaxPixels)/1e6)
	}
	return nil
}

// bytesText writes a size limit for people.
func bytesText(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

func corruptImage(err error) error {
	return fault.Wrap(fault.Invalid, err, "the image is truncated or corrupt")
}

func isYCbCr(img image.Image) bool {
	_, ok := img.(*image.YCbCr)
	return ok
}

// thumbnail returns a JPEG of img no longer than side on its longer side,
// over white where img is transparent.
func thumbnail(img image.Image, side int) ([]byte, error) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w > side || h > side {
		if w >= h {
			w, h = side, max(1, h*side/w)
		} else {
			w, h = max(1, w*side/h), side
		}
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(dst, dst.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	xdraw.BiLinear.Scale(dst, dst.Bounds(), img, b, xdraw.Over, nil)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, dst, &jpeg.Options{Quality: thumbnailQuality}); err != nil {
		return nil, fmt.Errorf("media: thumbnail: %w", err)
	}
	return buf.Bytes(), nil
}
