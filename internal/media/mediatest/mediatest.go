// Package mediatest makes uploads as phones and cameras write them — a
// JPEG with GPS and camera Exif, an MP4 with a location atom — and reads
// files back with an independent tool (exiftool), for the tests of the
// packages that take uploads.
package mediatest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Planted values: each fixture carries them, and none may survive cleaning.
const (
	PlantedMake  = "PlantedMake"
	PlantedModel = "PlantedPhone 12"
)

// JPEGWithGPS is a real JPEG with an Exif block holding a camera make and
// model and a GPS position.
func JPEGWithGPS(t testing.TB) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for x := 0; x < 64; x++ {
		for y := 0; y < 48; y++ {
			img.Set(x, y, color.RGBA{uint8(x * 4), uint8(y * 5), 90, 255})
		}
	}
	var enc bytes.Buffer
	if err := jpeg.Encode(&enc, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	raw := enc.Bytes()
	out := append([]byte{}, raw[:2]...) // SOI
	out = append(out, exifSegment()...)
	return append(out, raw[2:]...)
}

// exifSegment is an APP1 Exif segment (big-endian TIFF): IFD0 with Make
// and Model and a pointer to a GPS IFD with latitude and longitude.
func exifSegment() []byte {
	be := binary.BigEndian
	var tiff []byte
	u16 := func(v uint16) { tiff = be.AppendUint16(tiff, v) }
	u32 := func(v uint32) { tiff = be.AppendUint32(tiff, v) }
	entry := func(tag, typ uint16, count, value uint32) { u16(tag); u16(typ); u32(count); u32(value) }
	mk, model := PlantedMake+"\x00", PlantedModel+"\x00"
	const ifd0 = 8
	gps := ifd0 + 2 + 3*12 + 4
	data := gps + 2 + 4*12 + 4
	makeOff, modelOff := data, data+len(mk)
	latOff := modelOff + len(model)
	lonOff := latOff + 24
	tiff = append(tiff, 'M', 'M')
	u16(42)
	u32(ifd0)
	u16(3)
	entry(0x010f, 2, uint32(len(mk)), uint32(makeOff))
	entry(0x0110, 2, uint32(len(model)), uint32(modelOff))
	entry(0x8825, 4, 1, uint32(gps))
	u32(0)
	u16(4)
	entry(0x0001, 2, 2, uint32('N')<<24)
	entry(0x0002, 5, 3, uint32(latOff))
	entry(0x0003, 2, 2, uint32('E')<<24)
	entry(0x0004, 5, 3, uint32(lonOff))
	u32(0)
	tiff = append(tiff, mk...)
	tiff = append(tiff, model...)
	for _, v := range []uint32{48, 1, 51, 1, 30, 1, 2, 1, 17, 1, 40, 1} {
		u32(v)
	}
	body := append([]byte("Exif\x00\x00"), tiff...)
	seg := []byte{0xff, 0xe1}
	seg = be.AppendUint16(seg, uint16(len(body)+2))
	return append(seg, body...)
}

func box(typ string, parts ...[]byte) []byte {
	body := bytes.Join(parts, nil)
	out := binary.BigEndian.AppendUint32(nil, uint32(8+len(body)))
	return append(append(out, typ...), body...)
}

func full(typ string, parts ...[]byte) []byte {
	return box(typ, append([][]byte{{0, 0, 0, 0}}, parts...)...)
}

func u32s(vs ...uint32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

// MovieWithLocation is an MP4 (brand isom) with one video track of one
// sample, whose movie user data holds a location (©xyz), a make and a
// model: what a phone writes.
func MovieWithLocation(t testing.TB) []byte {
	t.Helper()
	return Movie(64)
}

// Movie is MovieWithLocation with one video sample of n bytes (a large
// upload for benchmarks).
func Movie(n int) []byte {
	head, sample := MovieStream(int64(n))
	b, _ := io.ReadAll(io.MultiReader(bytes.NewReader(head), sample))
	return b
}

// MovieStream is Movie as its head (everything up to the media data) and
// a reader of its n sample bytes, so a test can stream a movie of any size
// without holding it.
func MovieStream(n int64) ([]byte, io.Reader) {
	ftyp := box("ftyp", []byte("isom"), u32s(0x200), []byte("isomiso2mp41"))
	unity := u32s(0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)
	mvhd := full("mvhd", u32s(3797500000, 3797500000, 1000, 1000, 0x00010000), []byte{1, 0}, make([]byte, 10), unity, make([]byte, 24), u32s(2))
	tkhd := box("tkhd", []byte{0, 0, 0, 3}, u32s(3797500000, 3797500000, 1, 0, 1000, 0, 0), make([]byte, 8), unity, u32s(64<<16, 48<<16))
	mdhd := full("mdhd", u32s(3797500000, 3797500000, 1000, 1000), []byte{0x55, 0xc4, 0, 0})
	hdlr := full("hdlr", u32s(0), []byte("vide"), make([]byte, 12), []byte("VideoHandler\x00"))
	avc1 := box("avc1", make([]byte, 6), []byte{0, 1}, make([]byte, 16), []byte{0, 64, 0, 48}, u32s(0x00480000, 0x00480000, 0), []byte{0, 1},
		make([]byte, 32), []byte{0, 0x18, 0xff, 0xff})
	stsd := full("stsd", u32s(1), avc1)
	stts := full("stts", u32s(1, 1, 1000))
	stsc := full("stsc", u32s(1, 1, 1, 1))
	stsz := full("stsz", u32s(0, 1, uint32(n)))
	udta := box("udta",
		box("\xa9xyz", []byte{0, 18, 0x15, 0xc7}, []byte("+48.8583+002.2945/")),
		box("\xa9mak", []byte{0, byte(len(PlantedMake)), 0x15, 0xc7}, []byte(PlantedMake)),
		box("\xa9mod", []byte{0, byte(len(PlantedModel)), 0x15, 0xc7}, []byte(PlantedModel)))
	build := func(chunkOffset uint32) []byte {
		stco := full("stco", u32s(1, chunkOffset))
		stbl := box("stbl", stsd, stts, stsc, stsz, stco)
		minf := box("minf", full("vmhd", []byte{0, 0, 0, 0, 0, 0, 0, 0}), box("dinf", full("dref", u32s(1), full("url ", nil))), stbl)
		trak := box("trak", tkhd, box("mdia", mdhd, hdlr, minf))
		moov := box("moov", mvhd, trak, udta)
		mdat := binary.BigEndian.AppendUint32(nil, uint32(8+n))
		return append(append(append(ftyp, moov...), mdat...), "mdat"...)
	}
	head := build(0)
	head = build(uint32(len(head)))
	return head, io.LimitReader(fill(0x42), n)
}

// fill reads as an endless run of one byte.
type fill byte

func (f fill) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(f)
	}
	return len(p), nil
}

// ExifTool returns the tags exiftool reads in data (written to a file of
// the given extension), by group and name, without exiftool's own and the
// file system's. It fails the test under CI when exiftool is missing and
// skips it otherwise.
func ExifTool(t testing.TB, data []byte, ext string) map[string]any {
	t.Helper()
	bin, err := exec.LookPath("exiftool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("exiftool is not installed (apt-get install libimage-exiftool-perl)")
		}
		t.Skip("exiftool is not installed (apt-get install libimage-exiftool-perl)")
	}
	path := filepath.Join(t.TempDir(), "file"+ext)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-j", "-a", "-G1", path).Output()
	if err != nil {
		t.Fatalf("exiftool: %v", err)
	}
	var files []map[string]any
	if err := json.Unmarshal(out, &files); err != nil || len(files) != 1 {
		t.Fatalf("exiftool output %s: %v", out, err)
	}
	tags := files[0]
	for k := range tags {
		if k == "SourceFile" || strings.HasPrefix(k, "System:") || strings.HasPrefix(k, "ExifTool:") {
			delete(tags, k)
		}
	}
	return tags
}

// HasLocationOrDevice reports whether tags hold a GPS or location tag, a
// camera make, model or software, or a planted value.
func HasLocationOrDevice(tags map[string]any) bool {
	for k, v := range tags {
		name := k[strings.IndexByte(k, ':')+1:]
		lower := strings.ToLower(name)
		if strings.HasPrefix(lower, "gps") || strings.Contains(lower, "location") || lower == "make" || lower == "model" ||
			lower == "software" {
			return true
		}
		if s, ok := v.(string); ok && (strings.Contains(s, PlantedMake) || strings.Contains(s, "PlantedPhone") || strings.Contains(s, "48.8583")) {
			return true
		}
	}
	return false
}
