package media

import (
	"bytes"
	"testing"

	"steward/internal/fault"
)

// FuzzCleanImage checks that no input makes CleanImage panic or fail
// without a coded error, and that what it accepts comes out as a photo of
// the type it says, holding none of the planted metadata.
func FuzzCleanImage(f *testing.F) {
	f.Add(exifJPEG(f, halves(16, 8), 6))
	f.Add(exifJPEG(f, colour(17, 9), 7))
	f.Add(exifPNG(f, distinct(3, 2), 5))
	f.Add(commentGIF(f, halves(4, 4)))
	f.Add(exifWebP())
	f.Add(losslessWebP)
	f.Add(cat(exifJPEG(f, halves(8, 8), 1), zipArchive(f)))
	f.Add(bombPNG(100000, 100000))
	lim := Limits{MaxBytes: 1 << 20, MaxPixels: 1 << 20, MaxSide: 4096}
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		info, err := CleanImage(bytes.NewReader(in), &out, lim)
		if err != nil {
			if fault.CodeOf(err) == fault.Internal {
				t.Fatalf("an error without a code: %v", err)
			}
			return
		}
		if kind, mime := Detect(out.Bytes()); kind != Image || mime != info.MIME {
			t.Fatalf("output detected as %v %q, info says %q", kind, mime, info.MIME)
		}
		for _, p := range planted {
			if bytes.Contains(out.Bytes(), []byte(p)) || bytes.Contains(info.Thumbnail, []byte(p)) {
				t.Fatalf("output holds %q", p)
			}
		}
	})
}

// FuzzCleanVideo checks that no input makes CleanVideo panic or fail
// without a coded error, and that what it accepts comes out the same
// length, cleaned for good (cleaning it again changes nothing), holding
// none of the values planted in metadata boxes. A value in the media data
// or in a field of a kept box survives when a mutation hides what holds it
// (a handler type changed from "meta"): the cleaner finds those only where
// the file says what its tracks are.
func FuzzCleanVideo(f *testing.F) {
	for _, s := range []movieSpec{{}, {mdatFirst: true}, {large: true}, {brand: "qt  "}, {compact: true}} {
		f.Add(buildMovie(s).file)
	}
	f.Add(fragmentedMovie())
	f.Fuzz(func(t *testing.T, in []byte) {
		out, _, err := cleanVideo(t, in)
		if err != nil {
			if fault.CodeOf(err) == fault.Internal {
				t.Fatalf("an error without a code: %v", err)
			}
			return
		}
		if len(out) != len(in) {
			t.Fatalf("output of %d bytes, input %d", len(out), len(in))
		}
		for _, p := range plantedInBoxes {
			if bytes.Contains(out, []byte(p)) {
				t.Fatalf("output holds %q", p)
			}
		}
		again, _, err := cleanVideo(t, out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("cleaning the output again changed it (err %v)", err)
		}
	})
}
