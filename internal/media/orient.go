package media

import (
	"image"
	"image/draw"
)

// orient returns img turned as the EXIF orientation o (1 to 8) says, so
// that it stands upright once the tag is dropped: 2 mirrors left to right,
// 3 turns half round, 4 mirrors top to bottom, 5 transposes, 6 turns a
// quarter clockwise, 7 transverses, 8 turns a quarter anticlockwise.
//
// The pixels stay in the decoder's own layout where it has one plane per
// component (a JPEG's YCbCr planes are turned one by one), so turning costs
// one copy of the image and no colour conversion.
func orient(img image.Image, o int) image.Image {
	if o < 2 || o > 8 {
		return img
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	r := turnedRect(w, h, o)
	switch m := img.(type) {
	case *image.YCbCr:
		if t, ok := orientYCbCr(m, o); ok {
			return t
		}
		rgba := image.NewRGBA(b)
		draw.Draw(rgba, b, m, b.Min, draw.Src)
		return orient(rgba, o)
	case *image.Gray:
		return &image.Gray{Pix: turn(m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, w, h, 1, o), Stride: r.Dx(), Rect: r}
	case *image.Gray16:
		return &image.Gray16{Pix: turn(m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, w, h, 2, o), Stride: 2 * r.Dx(), Rect: r}
	case *image.Paletted:
		return &image.Paletted{Pix: turn(m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, w, h, 1, o), Stride: r.Dx(), Rect: r, Palette: m.Palette}
	case *image.RGBA:
		return &image.RGBA{Pix: turn(m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, w, h, 4, o), Stride: 4 * r.Dx(), Rect: r}
	case *image.NRGBA:
		return &image.NRGBA{Pix: turn(m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, w, h, 4, o), Stride: 4 * r.Dx(), Rect: r}
	case *image.CMYK:
		return &image.CMYK{Pix: turn(m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, w, h, 4, o), Stride: 4 * r.Dx(), Rect: r}
	case *image.RGBA64:
		return &image.RGBA64{Pix: turn(m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, w, h, 8, o), Stride: 8 * r.Dx(), Rect: r}
	case *image.NRGBA64:
		return &image.NRGBA64{Pix: turn(m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, w, h, 8, o), Stride: 8 * r.Dx(), Rect: r}
	}
	n := image.NewNRGBA64(b)
	draw.Draw(n, b, img, b.Min, draw.Src)
	return orient(n, o)
}

// transposedRatio is the chroma subsampling of a YCbCr image after its
// rows and columns swap. 4:1:1 and 4:1:0 have no transposed form in image.
var transposedRatio = map[image.YCbCrSubsampleRatio]image.YCbCrSubsampleRatio{
	image.YCbCrSubsampleRatio444: image.YCbCrSubsampleRatio444,
	image.YCbCrSubsampleRatio422: image.YCbCrSubsampleRatio440,
	image.YCbCrSubsampleRatio440: image.YCbCrSubsampleRatio422,
	image.YCbCrSubsampleRatio420: image.YCbCrSubsampleRatio420,
}

// orientYCbCr turns each plane of m. It reports false for a layout it does
// not know, which the caller converts to RGBA first.
func orientYCbCr(m *image.YCbCr, o int) (*image.YCbCr, bool) {
	if m.Rect.Min != (image.Point{}) {
		return nil, false
	}
	ratio := m.SubsampleRatio
	if o >= 5 {
		var ok bool
		if ratio, ok = transposedRatio[ratio]; !ok {
			return nil, false
		}
	}
	w, h := m.Rect.Dx(), m.Rect.Dy()
	cw, ch := chromaSize(w, h, m.SubsampleRatio)
	if cw < 0 {
		return nil, false
	}
	cr := turnedRect(cw, ch, o)
	r := turnedRect(w, h, o)
	return &image.YCbCr{
		Y:              turn(m.Y, m.YStride, w, h, 1, o),
		Cb:             turn(m.Cb, m.CStride, cw, ch, 1, o),
		Cr:             turn(m.Cr, m.CStride, cw, ch, 1, o),
		YStride:        r.Dx(),
		CStride:        cr.Dx(),
		SubsampleRatio: ratio,
		Rect:           r,
	}, true
}

// chromaSize is the size of the Cb and Cr planes of a w×h image whose
// bounds start at the origin, as image.NewYCbCr lays them out.
func chromaSize(w, h int, ratio image.YCbCrSubsampleRatio) (int, int) {
	switch ratio {
	case image.YCbCrSubsampleRatio444:
		return w, h
	case image.YCbCrSubsampleRatio422:
		return (w + 1) / 2, h
	case image.YCbCrSubsampleRatio420:
		return (w + 1) / 2, (h + 1) / 2
	case image.YCbCrSubsampleRatio440:
		return w, (h + 1) / 2
	}
	return -1, -1
}

// turnedRect is the bounds of a w×h image after orientation o.
func turnedRect(w, h, o int) image.Rectangle {
	if o >= 5 {
		return image.Rect(0, 0, h, w)
	}
	return image.Rect(0, 0, w, h)
}

// turn copies a w×h plane of bpp-byte pixels, rows stride bytes apart, into
// a new packed plane as orientation o (2 to 8) places them.
func turn(pix []byte, stride, w, h, bpp, o int) []byte {
	ow := w
	if o >= 5 {
		ow = h
	}
	// The source pixel (x, y) lands at pixel base + x*dx + y*dy.
	var base, dx, dy int
	switch o {
	case 2:
		base, dx, dy = w-1, -1, ow
	case 3:
		base, dx, dy = (h-1)*ow+w-1, -1, -ow
	case 4:
		base, dx, dy = (h-1)*ow, 1, -ow
	case 5:
		base, dx, dy = 0, ow, 1
	case 6:
		base, dx, dy = h-1, ow, -1
	case 7:
		base, dx, dy = (w-1)*ow+h-1, -ow, -1
	case 8:
		base, dx, dy = (w-1)*ow, -ow, 1
	}
	out := make([]byte, w*h*bpp)
	for y := 0; y < h; y++ {
		row := pix[y*stride : y*stride+w*bpp]
		d := base + y*dy
		if bpp == 1 {
			for _, v := range row {
				out[d] = v
				d += dx
			}
			continue
		}
		for x := 0; x < w; x++ {
			copy(out[d*bpp:d*bpp+bpp], row[x*bpp:])
			d += dx
		}
	}
	return out
}
