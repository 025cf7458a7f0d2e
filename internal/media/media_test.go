package media

import (
	"archive/zip"
	"bytes"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"

	"steward/internal/fault"
	"steward/internal/media/mediatest"
)

func TestDetect(t *testing.T) {
	mp4 := buildMovie(movieSpec{}).file
	mov := buildMovie(movieSpec{brand: "qt  "}).file
	withBrand := func(brand string) []byte {
		return append(box("ftyp", []byte(brand), u32(0), []byte(brand)), box("mdat")...)
	}
	tests := []struct {
		name string
		head []byte
		kind Kind
		mime string
	}{
		{"jpeg", encodeJPEG(t, halves(4, 4)), Image, "image/jpeg"},
		{"png named photo.jpg", exifPNG(t, distinct(3, 2), 1), Image, "image/png"},
		{"gif", commentGIF(t, halves(4, 4)), Image, "image/gif"},
		{"webp lossy", lossyWebP, Image, "image/webp"},
		{"webp lossless", losslessWebP, Image, "image/webp"},
		{"mp4", mp4, Video, "video/mp4"},
		{"quicktime", mov, Video, "video/quicktime"},
		{"m4v", withBrand("M4V "), Video, "video/x-m4v"},
		{"3gp", withBrand("3gp5"), Video, "video/3gpp"},
		{"heic is not cleaned", withBrand("heic"), Other, "image/heic"},
		{"audio mp4", withBrand("M4A "), Other, "audio/x-m4a"},
		{"html", []byte("<!DOCTYPE html><html><script>alert(1)</script></html>"), Other, "text/html; charset=utf-8"},
		{"webm", []byte("\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08\x42\x82\x84webm"), Other, "video/webm"},
		{"empty", nil, Other, "text/plain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, mime := Detect(tt.head)
			if kind != tt.kind || !strings.HasPrefix(mime, tt.mime) {
				t.Errorf("Detect = %v %q, want %v %q", kind, mime, tt.kind, tt.mime)
			}
		})
	}
}

// ---- exiftool, an independent reader -----------------------------------------

// exiftool returns the tags exiftool reads in data, by group and name
// ("GPS:GPSLatitude"), without those about the file itself (its name,
// size, type) but for a JPEG's or GIF's comment, which exiftool files there.
func exiftool(t *testing.T, data []byte, ext string) map[string]any {
	t.Helper()
	tags := mediatest.ExifTool(t, data, ext)
	for k := range tags {
		if strings.HasPrefix(k, "File:") && k != "File:Comment" {
			delete(tags, k)
		}
	}
	return tags
}

// revealing matches the names of tags that tell where, who or with what:
// a position, a camera or phone, a program, an owner.
var revealing = regexp.MustCompile(`^(GPS.*|.*Location.*|.*Coordinates.*|Make|Model|Software.*|CreatorTool|SerialNumber|Comment|CompressorName|HandlerDescription|VendorID|Encoder|.*Name)$`)

// leaks returns the tags exiftool finds that reveal something: a
// revealing name with a value, or a date that is not zero.
func leaks(tags map[string]any) []string {
	var found []string
	for k, v := range tags {
		name := k[strings.IndexByte(k, ':')+1:]
		s, _ := v.(string)
		switch {
		case revealing.MatchString(name) && v != "":
			found = append(found, k)
		case strings.HasSuffix(name, "Date") && s != "0000:00:00 00:00:00":
			found = append(found, k)
		}
	}
	slices.Sort(found)
	return found
}

// assertCleaned checks with exiftool that the input had revealing tags
// (those in want, at least) and the output has none.
func assertCleaned(t *testing.T, in []byte, inExt string, out []byte, outExt string, want ...string) {
	t.Helper()
	before := leaks(exiftool(t, in, inExt))
	for _, w := range want {
		if !slices.Contains(before, w) {
			t.Errorf("the fixture lacks %s: exiftool read %v", w, before)
		}
	}
	if after := leaks(exiftool(t, out, outExt)); len(after) > 0 {
		tags := exiftool(t, out, outExt)
		for _, k := range after {
			t.Errorf("cleaned file still has %s = %v", k, tags[k])
		}
	}
}

// assertNoPlanted checks that no planted value survives in b.
func assertNoPlanted(t *testing.T, b []byte) {
	t.Helper()
	for _, p := range planted {
		if bytes.Contains(b, []byte(p)) {
			t.Errorf("output still holds %q", p)
		}
	}
}

// assertCode checks that err carries code and, when msg is not empty, a
// message containing it.
func assertCode(t *testing.T, err error, code fault.Code, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want %s", code)
	}
	if got := fault.CodeOf(err); got != code {
		t.Fatalf("code = %s (%v), want %s", got, err, code)
	}
	if !strings.Contains(fault.MessageOf(err), msg) {
		t.Errorf("message = %q, want it to contain %q", fault.MessageOf(err), msg)
	}
}

// zipArchive is a ZIP with one file, for polyglots.
func zipArchive(t testing.TB) []byte {
	var b bytes.Buffer
	z := zip.NewWriter(&b)
	f, err := z.Create("payload.html")
	if err == nil {
		_, err = f.Write([]byte("<script>alert(1)</script>"))
	}
	if err == nil {
		err = z.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

var errBrokenWriter = errors.New("broken writer")

type brokenWriter struct{}

func (brokenWriter) Write([]byte) (int, error) { return 0, errBrokenWriter }
