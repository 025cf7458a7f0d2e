package media

import (
	"bytes"
	"image"
	"io"
	"math/rand/v2"
	"testing"
)

// photo is a w×h image with smooth gradients and grain, which a JPEG
// encoder treats about as it treats a camera's photo.
func photo(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	r := rand.New(rand.NewPCG(1, 2))
	for y := range h {
		for x := range w {
			i := img.PixOffset(x, y)
			grain := uint8(r.IntN(16))
			img.Pix[i] = uint8(x*255/w) + grain
			img.Pix[i+1] = uint8(y*255/h) + grain
			img.Pix[i+2] = uint8((x+y)*127/(w+h)) + grain
			img.Pix[i+3] = 255
		}
	}
	return img
}

// BenchmarkCleanImage cleans a 12-megapixel phone photo (4000×3000 JPEG
// with Exif and XMP), stored upright and stored sideways (orientation 6),
// thumbnail included.
func BenchmarkCleanImage(b *testing.B) {
	const w, h = 4000, 3000
	src := photo(w, h)
	for _, tt := range []struct {
		name        string
		orientation int
	}{
		{"12MP/upright", 1},
		{"12MP/sideways", 6},
	} {
		in := exifJPEG(b, src, tt.orientation)
		b.Run(tt.name, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				if _, err := CleanImage(bytes.NewReader(in), io.Discard, Limits{}); err != nil {
					b.Fatal(err)
				}
			}
			perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(perOp/1e6/(w*h/1e6), "ms/MP")
		})
	}
}

// BenchmarkCleanVideo cleans a 64 MiB movie, and copies the same bytes
// with io.Copy in the same run: the difference is what cleaning costs over
// moving the bytes at all.
func BenchmarkCleanVideo(b *testing.B) {
	video := make([]byte, 64<<20)
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i+8 <= len(video); i += 8 {
		v := r.Uint64()
		copy(video[i:], []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24), byte(v >> 32), byte(v >> 40), byte(v >> 48), byte(v >> 56)})
	}
	file := buildMovie(movieSpec{mdatFirst: true, video: video}).file
	in := bytes.NewReader(file)
	size := int64(len(file))
	b.Run("CleanVideo", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if _, err := CleanVideo(in, size, io.Discard); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("io.Copy", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if _, err := io.Copy(io.Discard, io.NewSectionReader(in, 0, size)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
