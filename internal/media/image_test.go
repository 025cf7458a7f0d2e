package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/jpeg"
	"image/png"
	"runtime"
	"testing"

	"steward/internal/fault"
)

func TestCleanImageRemovesMetadata(t *testing.T) {
	tests := []struct {
		name, ext, mime string
		in              []byte
		want            []string // tags exiftool must find in the input
	}{
		{"jpeg", ".jpg", "image/jpeg", exifJPEG(t, halves(16, 8), 1),
			[]string{"GPS:GPSLatitude", "GPS:GPSLongitude", "IFD0:Make", "IFD0:Model", "IFD0:Software", "XMP-exif:GPSLatitude", "XMP-tiff:Make", "File:Comment"}},
		{"png", ".png", "image/png", exifPNG(t, distinct(3, 2), 1),
			[]string{"GPS:GPSLatitude", "IFD0:Make", "IFD0:Model", "IFD0:Software", "PNG:Comment"}},
		{"gif", ".gif", "image/png", commentGIF(t, halves(4, 4)), []string{"File:Comment"}},
		{"webp", ".webp", "image/jpeg", exifWebP(),
			[]string{"GPS:GPSLatitude", "IFD0:Make", "IFD0:Model", "XMP-exif:GPSLatitude"}},
		{"webp lossless", ".webp", "image/png", losslessWebP, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			info, err := CleanImage(bytes.NewReader(tt.in), &out, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if info.MIME != tt.mime {
				t.Errorf("MIME = %q, want %q", info.MIME, tt.mime)
			}
			if kind, mime := Detect(out.Bytes()); kind != Image || mime != tt.mime {
				t.Errorf("output detected as %v %q, want %q", kind, mime, tt.mime)
			}
			assertNoPlanted(t, out.Bytes())
			assertCleaned(t, tt.in, tt.ext, out.Bytes(), map[string]string{"image/jpeg": ".jpg", "image/png": ".png"}[tt.mime], tt.want...)
		})
	}
}

// TestCleanImageOrientation checks every EXIF orientation against its
// definition, on a PNG (lossless) whose pixels are all different.
func TestCleanImageOrientation(t *testing.T) {
	const w, h = 3, 2
	src := distinct(w, h)
	for o := 1; o <= 8; o++ {
		var out bytes.Buffer
		info, err := CleanImage(bytes.NewReader(exifPNG(t, src, o)), &out, Limits{})
		if err != nil {
			t.Fatalf("orientation %d: %v", o, err)
		}
		got, err := png.Decode(&out)
		if err != nil {
			t.Fatal(err)
		}
		wantW, wantH := w, h
		if o >= 5 {
			wantW, wantH = h, w
		}
		if b := got.Bounds(); b.Dx() != wantW || b.Dy() != wantH || info.Width != wantW || info.Height != wantH {
			t.Fatalf("orientation %d: %v, info %d×%d, want %d×%d", o, b, info.Width, info.Height, wantW, wantH)
		}
		for y := range wantH {
			for x := range wantW {
				sx, sy := storedAt(o, w, h, x, y)
				if g, s := grey(got, x, y), src.GrayAt(sx, sy).Y; g != s {
					t.Errorf("orientation %d: pixel (%d,%d) = %d, want %d from (%d,%d)", o, x, y, g, s, sx, sy)
				}
			}
		}
	}
}

func grey(img image.Image, x, y int) uint8 {
	r, g, b, _ := img.At(x, y).RGBA()
	return uint8((r + g + b) / 3 >> 8)
}

// TestCleanImageTurnsJPEG is the photo held sideways: a 2×1 JPEG with
// orientation 6 comes out 1×2, the left pixel on top.
func TestCleanImageTurnsJPEG(t *testing.T) {
	for _, tt := range []struct {
		name string
		img  image.Image
	}{
		{"2x1 grey", halves(2, 1)},
		{"16x8 colour 4:2:0", colour(16, 8)},
		{"17x9 colour, odd sides", colour(17, 9)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			info, err := CleanImage(bytes.NewReader(exifJPEG(t, tt.img, 6)), &out, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := jpeg.Decode(&out)
			if err != nil {
				t.Fatal(err)
			}
			b := tt.img.Bounds()
			if gb := got.Bounds(); gb.Dx() != b.Dy() || gb.Dy() != b.Dx() || info.Width != b.Dy() || info.Height != b.Dx() {
				t.Fatalf("bounds %v, info %d×%d, want %d×%d", gb, info.Width, info.Height, b.Dy(), b.Dx())
			}
			// Turned a quarter clockwise: the stored left half (white) is on top.
			top, bottom := grey(got, 0, 0), grey(got, 0, got.Bounds().Dy()-1)
			if top < 200 || bottom > 60 {
				t.Errorf("top %d, bottom %d: want white over black", top, bottom)
			}
		})
	}
}

// colour is a w×h RGBA image, white on the left half, black on the right,
// so that the encoder subsamples its chroma.
func colour(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			i := img.PixOffset(x, y)
			img.Pix[i+3] = 255
			if x < (w+1)/2 {
				img.Pix[i], img.Pix[i+1], img.Pix[i+2] = 255, 255, 255
			}
		}
	}
	return img
}

func TestCleanImageThumbnail(t *testing.T) {
	tests := []struct {
		name          string
		in            []byte
		width, height int
	}{
		{"landscape", encodeJPEG(t, halves(1000, 500)), ThumbnailSide, ThumbnailSide / 2},
		{"portrait after turning", exifJPEG(t, halves(1000, 500), 6), ThumbnailSide / 2, ThumbnailSide},
		{"small stays small", encodeJPEG(t, halves(40, 30)), 40, 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			info, err := CleanImage(bytes.NewReader(tt.in), &out, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			th, err := jpeg.Decode(bytes.NewReader(info.Thumbnail))
			if err != nil {
				t.Fatal(err)
			}
			if b := th.Bounds(); b.Dx() != tt.width || b.Dy() != tt.height {
				t.Errorf("thumbnail %v, want %d×%d", b, tt.width, tt.height)
			}
			assertNoPlanted(t, info.Thumbnail)
		})
	}
}

// bombPNG is a PNG header claiming a w×h image, with no pixels at all.
func bombPNG(w, h uint32) []byte {
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 6, 0, 0, 0)
	b := append([]byte("\x89PNG\r\n\x1a\n"), pngChunk("IHDR", ihdr)...)
	b = append(b, pngChunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})...)
	return append(b, pngChunk("IEND", nil)...)
}

func TestCleanImageRefuses(t *testing.T) {
	jpg := exifJPEG(t, halves(16, 8), 1)
	html := []byte("<html><body><script>alert(document.cookie)</script></body></html>")
	tests := []struct {
		name string
		in   []byte
		lim  Limits
		code fault.Code
		msg  string
	}{
		{"decompression bomb", bombPNG(100000, 100000), Limits{}, fault.TooLarge, "100000×100000 pixels"},
		{"over the pixel limit", bombPNG(8000, 8000), Limits{}, fault.TooLarge, "at most 20000 pixels a side and 50 megapixels"},
		{"one side too long", bombPNG(30000, 10), Limits{}, fault.TooLarge, "30000×10"},
		{"over a lower limit", encodeJPEG(t, halves(64, 64)), Limits{MaxPixels: 1000}, fault.TooLarge, "64×64"},
		{"file too large", jpg, Limits{MaxBytes: 100}, fault.TooLarge, "larger than"},
		{"truncated jpeg", jpg[:len(jpg)-40], Limits{}, fault.Invalid, "truncated or corrupt"},
		{"truncated in the header", jpg[:30], Limits{}, fault.Invalid, "truncated or corrupt"},
		{"truncated png", exifPNG(t, distinct(3, 2), 1)[:120], Limits{}, fault.Invalid, "truncated or corrupt"},
		{"truncated gif", commentGIF(t, halves(4, 4))[:40], Limits{}, fault.Invalid, "truncated or corrupt"},
		{"truncated webp", lossyWebP[:30], Limits{}, fault.Invalid, "truncated or corrupt"},
		{"jpeg then html and zip", cat(jpg, html, []byte("PK\x03\x04"), zipArchive(t)), Limits{}, fault.Invalid, "another file after its end (HTML or script)"},
		{"jpeg then zip", cat(jpg, zipArchive(t)), Limits{}, fault.Invalid, "(ZIP archive)"},
		{"jpeg then padding then zip", cat(jpg, zeroBytes(100), zipArchive(t)), Limits{}, fault.Invalid, "(ZIP archive)"},
		{"png then html", cat(exifPNG(t, distinct(3, 2), 1), html), Limits{}, fault.Invalid, "(HTML or script)"},
		{"gif then php", cat(commentGIF(t, halves(4, 4)), []byte("<?php system($_GET['c']); ?>")), Limits{}, fault.Invalid, "(HTML or script)"},
		{"jpeg then pdf", cat(jpg, []byte("%PDF-1.7\n")), Limits{}, fault.Invalid, "(PDF)"},
		{"pdf in the first KiB reads as a pdf", cat(lossyWebP, []byte("%PDF-1.7\n")), Limits{}, fault.Unsupported, "(found application/pdf)"},
		{"html named .jpg", html, Limits{}, fault.Unsupported, "not a photo this service can clean (found text/html"},
		{"mp4", buildMovie(movieSpec{}).file, Limits{}, fault.Unsupported, "(found video/mp4)"},
		{"animated webp", riff(riffChunk("VP8X", []byte{0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0}), riffChunk("ANIM", zeroBytes(6))), Limits{}, fault.Unsupported, "animated WebP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			_, err := CleanImage(bytes.NewReader(tt.in), &out, tt.lim)
			assertCode(t, err, tt.code, tt.msg)
		})
	}
}

// TestCleanImageBombAllocatesNothing checks that a header claiming ten
// gigapixels is refused without the pixels being allocated.
func TestCleanImageBombAllocatesNothing(t *testing.T) {
	in := bombPNG(100000, 100000)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := CleanImage(bytes.NewReader(in), &bytes.Buffer{}, Limits{})
	runtime.ReadMemStats(&after)
	assertCode(t, err, fault.TooLarge, "100000×100000")
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Errorf("refusing the bomb allocated %d bytes", n)
	}
}

// TestCleanImageDropsWhatFollows checks that bytes after the image that
// are no file (padding, a second JPEG as a phone's preview or gain map)
// are dropped and counted, and that a payload hidden inside the image (a
// comment) does not survive the re-encoding either.
func TestCleanImageDropsWhatFollows(t *testing.T) {
	jpg := exifJPEG(t, halves(16, 8), 1)
	preview := encodeJPEG(t, halves(8, 8))
	hidden := withSegments(encodeJPEG(t, halves(16, 8)),
		jpegSegment(0xFE, []byte("<html><script>alert(1)</script></html>")),
		jpegSegment(0xFE, zipArchive(t)[:30]))
	tests := []struct {
		name     string
		in       []byte
		trailing int64
	}{
		{"padding", cat(jpg, zeroBytes(500)), 500},
		{"preview image", cat(jpg, preview), int64(len(preview))},
		{"payload in a comment", hidden, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			info, err := CleanImage(bytes.NewReader(tt.in), &out, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if info.Trailing != tt.trailing {
				t.Errorf("Trailing = %d, want %d", info.Trailing, tt.trailing)
			}
			for _, s := range []string{"<html", "<script", "PK\x03\x04"} {
				if bytes.Contains(out.Bytes(), []byte(s)) {
					t.Errorf("output holds %q", s)
				}
			}
			if end := out.Bytes()[out.Len()-2:]; !bytes.Equal(end, []byte{0xFF, 0xD9}) {
				t.Errorf("output ends with % x, not the end-of-image marker", end)
			}
		})
	}
}

func TestCleanImageWriteError(t *testing.T) {
	_, err := CleanImage(bytes.NewReader(encodeJPEG(t, halves(8, 8))), brokenWriter{}, Limits{})
	if !errors.Is(err, errBrokenWriter) {
		t.Errorf("err = %v, want the writer's", err)
	}
}

func TestTiffOrientation(t *testing.T) {
	tests := []struct {
		name string
		tiff []byte
		want int
	}{
		{"big-endian", exifTIFF(binary.BigEndian, 6), 6},
		{"little-endian", exifTIFF(binary.LittleEndian, 8), 8},
		{"out of range", exifTIFF(binary.LittleEndian, 9), 1},
		{"empty", nil, 1},
		{"bad byte order", []byte("XX*\x00\x08\x00\x00\x00"), 1},
		{"IFD past the end", []byte("II*\x00\xff\x00\x00\x00"), 1},
		{"entries cut short", exifTIFF(binary.BigEndian, 6)[:30], 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tiffOrientation(tt.tiff); got != tt.want {
				t.Errorf("orientation = %d, want %d", got, tt.want)
			}
		})
	}
}
