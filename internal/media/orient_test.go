package media

import (
	"image"
	"image/color"
	"strings"
	"testing"
)

// storedAt says which stored pixel the displayed pixel (x, y) of a w×h
// stored image shows under each EXIF orientation (EXIF 2.3, tag 0x0112).
func storedAt(o, w, h, x, y int) (int, int) {
	switch o {
	case 2:
		return w - 1 - x, y
	case 3:
		return w - 1 - x, h - 1 - y
	case 4:
		return x, h - 1 - y
	case 5:
		return y, x
	case 6:
		return y, h - 1 - x
	case 7:
		return w - 1 - y, h - 1 - x
	case 8:
		return w - 1 - y, x
	}
	return x, y
}

// TestOrientLayouts turns every pixel layout a decoder returns, under
// every orientation, and compares each pixel with the definition.
func TestOrientLayouts(t *testing.T) {
	const w, h = 8, 4 // even, and a multiple of 4 wide, as every chroma subsampling wants
	seq := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*37 + 11)
		}
		return b
	}
	r := image.Rect(0, 0, w, h)
	ycbcr := func(ratio image.YCbCrSubsampleRatio) *image.YCbCr {
		m := image.NewYCbCr(r, ratio)
		copy(m.Y, seq(len(m.Y)))
		copy(m.Cb, seq(len(m.Cb))[3:])
		copy(m.Cr, seq(len(m.Cr) + 5)[5:])
		return m
	}
	palette := color.Palette{}
	for i := range 256 {
		palette = append(palette, color.RGBA{uint8(i), uint8(255 - i), uint8(i * 3), 255})
	}
	layouts := []struct {
		name string
		img  image.Image
	}{
		{"Gray", &image.Gray{Pix: seq(w * h), Stride: w, Rect: r}},
		{"Gray16", &image.Gray16{Pix: seq(2 * w * h), Stride: 2 * w, Rect: r}},
		{"RGBA", &image.RGBA{Pix: seq(4 * w * h), Stride: 4 * w, Rect: r}},
		{"NRGBA", &image.NRGBA{Pix: seq(4 * w * h), Stride: 4 * w, Rect: r}},
		{"RGBA64", &image.RGBA64{Pix: seq(8 * w * h), Stride: 8 * w, Rect: r}},
		{"NRGBA64", &image.NRGBA64{Pix: seq(8 * w * h), Stride: 8 * w, Rect: r}},
		{"CMYK", &image.CMYK{Pix: seq(4 * w * h), Stride: 4 * w, Rect: r}},
		{"Paletted", &image.Paletted{Pix: seq(w * h), Stride: w, Rect: r, Palette: palette}},
		{"Alpha, converted", &image.Alpha{Pix: seq(w * h), Stride: w, Rect: r}},
		{"sub-image", (&image.Gray{Pix: seq((w + 2) * (h + 1)), Stride: w + 2, Rect: image.Rect(0, 0, w+2, h+1)}).SubImage(image.Rect(1, 1, w+1, h+1))},
		{"YCbCr 4:4:4", ycbcr(image.YCbCrSubsampleRatio444)},
		{"YCbCr 4:2:2", ycbcr(image.YCbCrSubsampleRatio422)},
		{"YCbCr 4:4:0", ycbcr(image.YCbCrSubsampleRatio440)},
		{"YCbCr 4:2:0", ycbcr(image.YCbCrSubsampleRatio420)},
		{"YCbCr 4:1:1, converted", ycbcr(image.YCbCrSubsampleRatio411)},
		{"YCbCr 4:1:0, converted", ycbcr(image.YCbCrSubsampleRatio410)},
	}
	for _, tt := range layouts {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.img.Bounds()
			model := color.RGBA64Model
			if strings.HasSuffix(tt.name, "converted") { // to 8 bits a channel
				model = color.RGBAModel
			}
			for o := 1; o <= 8; o++ {
				got := orient(tt.img, o)
				gw, gh := b.Dx(), b.Dy()
				if o >= 5 {
					gw, gh = gh, gw
				}
				if gb := got.Bounds(); gb != image.Rect(0, 0, gw, gh) && o > 1 {
					t.Fatalf("orientation %d: bounds %v, want %d×%d", o, gb, gw, gh)
				}
				gb := got.Bounds()
				for y := range gh {
					for x := range gw {
						sx, sy := storedAt(o, b.Dx(), b.Dy(), x, y)
						want := model.Convert(tt.img.At(b.Min.X+sx, b.Min.Y+sy))
						if g := model.Convert(got.At(gb.Min.X+x, gb.Min.Y+y)); g != want {
							t.Fatalf("orientation %d: pixel (%d,%d) = %v, want %v from (%d,%d)", o, x, y, g, want, sx, sy)
						}
					}
				}
			}
		})
	}
}
