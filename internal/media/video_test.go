package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"steward/internal/fault"
)

func cleanVideo(t testing.TB, in []byte) ([]byte, Info, error) {
	t.Helper()
	var out bytes.Buffer
	info, err := CleanVideo(bytes.NewReader(in), int64(len(in)), &out)
	return out.Bytes(), info, err
}

func TestCleanVideo(t *testing.T) {
	tests := []struct {
		name string
		spec movieSpec
		mime string
		ext  string
	}{
		{"mp4, movie box first", movieSpec{}, "video/mp4", ".mp4"},
		{"mp4, media data first", movieSpec{mdatFirst: true}, "video/mp4", ".mp4"},
		{"mp4, 64-bit sizes and offsets", movieSpec{large: true}, "video/mp4", ".mp4"},
		{"quicktime", movieSpec{brand: "qt  ", mdatFirst: true}, "video/quicktime", ".mov"},
		{"compact sample sizes", movieSpec{compact: true}, "video/mp4", ".mp4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := buildMovie(tt.spec)
			out, info, err := cleanVideo(t, m.file)
			if err != nil {
				t.Fatal(err)
			}
			if info.MIME != tt.mime || info.Width != 640 || info.Height != 480 {
				t.Errorf("info = %+v, want %s 640×480", info, tt.mime)
			}
			if len(out) != len(m.file) {
				t.Fatalf("output has %d bytes, input %d", len(out), len(m.file))
			}

			// The video sample is where the chunk offset in the output says,
			// unchanged; the timed-metadata sample is zeroed.
			at := chunkOffsetOf(t, out, tt.spec.large)
			if at != m.videoAt || !bytes.Equal(out[at:at+int64(m.videoSize)], m.video) {
				t.Errorf("the output's first chunk offset %d does not point at the video sample (at %d)", at, m.videoAt)
			}
			if !allZero(out[m.gpmfAt : m.gpmfAt+int64(len(plantedGPMF))]) {
				t.Errorf("the timed-metadata sample survived: %q", out[m.gpmfAt:m.gpmfAt+30])
			}
			mdatIn, mdatOut := m.file[m.mdatAt:m.mdatAt+m.mdatSize], out[m.mdatAt:m.mdatAt+m.mdatSize]
			if n := m.gpmfAt - m.mdatAt; !bytes.Equal(mdatIn[:n], mdatOut[:n]) {
				t.Error("the media data before the metadata sample changed")
			}

			// The user data is a free box of the same size, all zeros.
			udta := out[m.udtaAt : m.udtaAt+int64(m.udtaSize)]
			if string(udta[4:8]) != "free" || binary.BigEndian.Uint32(udta) != uint32(m.udtaSize) || !allZero(udta[8:]) {
				t.Errorf("udta became %q of %d bytes, zeroed %v", udta[4:8], binary.BigEndian.Uint32(udta), allZero(udta[8:]))
			}
			if xmp := out[m.xmpAt:]; string(xmp[4:8]) != "free" {
				t.Errorf("the XMP uuid box became %q", xmp[4:8])
			}
			assertNoPlanted(t, out)
			assertCleaned(t, m.file, tt.ext, out, tt.ext,
				"UserData:GPSCoordinates", "UserData:Make", "UserData:Model", "UserData:SoftwareVersion", "UserData:ContentCreateDate",
				"Keys:GPSCoordinates", "Keys:Make", "Keys:Model", "Keys:Software", "Keys:CreationDate",
				"XMP-exif:GPSLatitude", "XMP-tiff:Make", "QuickTime:CreateDate", "Track1:TrackCreateDate", "Track1:MediaCreateDate",
				"Track1:HandlerDescription", "Track1:CompressorName", "Track1:VendorID", "Track2:HandlerDescription")

			// Cleaning is idempotent.
			again, _, err := cleanVideo(t, out)
			if err != nil || !bytes.Equal(again, out) {
				t.Errorf("cleaning the output again changed it (err %v)", err)
			}
		})
	}
}

// chunkOffsetOf returns the first chunk offset of the first track in a
// movie.
func chunkOffsetOf(t *testing.T, file []byte, large bool) int64 {
	t.Helper()
	if large {
		i := bytes.Index(file, []byte("co64"))
		return int64(binary.BigEndian.Uint64(file[i+12:]))
	}
	i := bytes.Index(file, []byte("stco"))
	return int64(binary.BigEndian.Uint32(file[i+12:]))
}

// replaceBox returns file with the first box of type typ replaced by with.
func replaceBox(t testing.TB, file []byte, typ string, with []byte) []byte {
	i := bytes.Index(file, []byte(typ)) - 4
	if i < 0 {
		t.Fatalf("no %q box", typ)
	}
	n := int(binary.BigEndian.Uint32(file[i:]))
	return cat(file[:i], with, file[i+n:])
}

// replaceLast returns file with the last old replaced by new.
func replaceLast(file, old, new []byte) []byte {
	i := bytes.LastIndex(file, old)
	return cat(file[:i], new, file[i+len(old):])
}

func TestCleanVideoRefuses(t *testing.T) {
	m := buildMovie(movieSpec{})
	ftyp := box("ftyp", []byte("isom"), u32(0), []byte("isom"))
	sizeAt := func(off int64, size uint32) []byte {
		b := bytes.Clone(m.file)
		binary.BigEndian.PutUint32(b[off:], size)
		return b
	}
	tests := []struct {
		name string
		in   []byte
		code fault.Code
		msg  string
	}{
		{"webm", []byte("\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08\x42\x82\x84webm"),
			fault.Unsupported, "WebM videos cannot be cleaned"},
		{"avi", cat([]byte("RIFF"), u32(100), []byte("AVI LIST"), zeroBytes(100)), fault.Unsupported, "AVI videos cannot be cleaned"},
		{"a jpeg", encodeJPEG(t, halves(8, 8)), fault.Unsupported, "not a video this service can clean (found image/jpeg)"},
		{"truncated", m.file[:len(m.file)-10], fault.Invalid, "truncated or corrupt"},
		{"stray bytes at the end", cat(m.file, []byte{1, 2, 3}), fault.Invalid, "truncated or corrupt"},
		{"box past the end of the file", sizeAt(m.mdatAt, uint32(m.mdatSize+1)), fault.Invalid, "truncated or corrupt"},
		{"box smaller than its header", sizeAt(m.mdatAt, 4), fault.Invalid, "truncated or corrupt"},
		{"64-bit size smaller than its header", cat(ftyp, box("moov"), u32(1), []byte("mdat"), u64(12)), fault.Invalid, "truncated or corrupt"},
		{"uuid without its user type", cat(ftyp, box("moov"), box("uuid", zeroBytes(4))), fault.Invalid, "truncated or corrupt"},
		{"child past its parent", sizeAt(m.udtaAt, uint32(m.udtaSize+100)), fault.Invalid, "truncated or corrupt"},
		{"no movie box", cat(ftyp, box("mdat", zeroBytes(10))), fault.Invalid, "truncated or corrupt"},
		{"two movie boxes", cat(ftyp, box("moov"), box("moov")), fault.Invalid, "truncated or corrupt"},
		{"unknown mvhd version", replaceBox(t, m.file, "mvhd", fullBox("mvhd", 2, 0, zeroBytes(96))), fault.Invalid, "truncated or corrupt"},
		{"short tkhd", replaceBox(t, m.file, "tkhd", fullBox("tkhd", 0, 0, zeroBytes(20))), fault.Invalid, "truncated or corrupt"},
		{"metadata sample outside the media data", sizeAt(int64(bytes.LastIndex(m.file, []byte("stco"))+12), 10_000),
			fault.Invalid, "truncated or corrupt"},
		{"stsc lists more samples than stsz", replaceLast(m.file,
			fullBox("stsc", 0, 0, u32(1), u32(1), u32(1), u32(1)),
			fullBox("stsc", 0, 0, u32(1), u32(1), u32(5), u32(1))), fault.Invalid, "truncated or corrupt"},
		{"a track without a handler", replaceBox(t, m.file, "hdlr", box("free", zeroBytes(len(fullBox("hdlr", 0, 0, u32(0), []byte("vide"), zeroBytes(12), []byte(plantedHandler+"\x00")))-8))),
			fault.Invalid, "truncated or corrupt"},
		{"size 0 inside a box", cat(ftyp, box("moov", u32(0), []byte("trak"), u32(7))), fault.Invalid, "truncated or corrupt"},
		{"compressed movie header", cat(ftyp, box("moov", box("cmov", zeroBytes(20)))), fault.Unsupported, "compressed QuickTime movie headers"},
		{"media outside the file", cat(ftyp, box("moov", box("trak", box("mdia", box("minf", box("dinf",
			fullBox("dref", 0, 0, u32(1), fullBox("url ", 0, 0, []byte("file:///Users/alice/Movies/clip.mov\x00"))))))))),
			fault.Unsupported, "refers to media outside the file"},
		{"fragmented, with timed metadata", cat(m.file, box("moof", fullBox("mfhd", 0, 0, u32(1)))), fault.Unsupported, "fragmented movie"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := cleanVideo(t, tt.in)
			assertCode(t, err, tt.code, tt.msg)
		})
	}
}

// hugeMoov is a file whose movie box claims more than 64 MiB: bytes are
// read on demand, so the test holds none of them.
type hugeMoov struct{ head []byte }

func (h hugeMoov) ReadAt(p []byte, off int64) (int, error) {
	clear(p)
	if off < int64(len(h.head)) {
		copy(p, h.head[off:])
	}
	return len(p), nil
}

func TestCleanVideoMovieBoxTooLarge(t *testing.T) {
	const size = 100 << 20
	ftyp := box("ftyp", []byte("isom"), u32(0), []byte("isom"))
	head := cat(ftyp, u32(size-uint32(len(ftyp))), []byte("moov"))
	_, err := CleanVideo(hugeMoov{head}, size, io.Discard)
	assertCode(t, err, fault.TooLarge, "moov box is larger than 64 MiB")
}

func TestCleanVideoWriteError(t *testing.T) {
	m := buildMovie(movieSpec{})
	_, err := CleanVideo(bytes.NewReader(m.file), int64(len(m.file)), brokenWriter{})
	if !errors.Is(err, errBrokenWriter) {
		t.Errorf("err = %v, want the writer's", err)
	}
}

// TestCleanVideoFragmented checks a fragmented movie without timed
// metadata: fragments are cleaned like the movie box.
func TestCleanVideoFragmented(t *testing.T) {
	in := fragmentedMovie()
	out, _, err := cleanVideo(t, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) || !bytes.Contains(out, []byte("FRAGMENT")) {
		t.Errorf("output of %d bytes, input %d, media data kept %v", len(out), len(in), bytes.Contains(out, []byte("FRAGMENT")))
	}
	assertNoPlanted(t, out)
}

// TestChildrenNestBoundedly checks that no container the cleaner walks can
// hold itself at any depth, so that walking a movie box recurses a bounded
// number of times whatever its bytes say.
func TestChildrenNestBoundedly(t *testing.T) {
	var depth func(typ string, seen map[string]bool) int
	depth = func(typ string, seen map[string]bool) int {
		if seen[typ] {
			t.Fatalf("%q can hold itself", typ)
		}
		seen[typ] = true
		defer delete(seen, typ)
		deepest := 0
		for child := range children[typ] {
			if _, container := children[child]; container {
				deepest = max(deepest, depth(child, seen))
			}
		}
		return deepest + 1
	}
	for _, top := range []string{"moov", "moof"} {
		if d := depth(top, map[string]bool{}); d > 6 {
			t.Errorf("%s nests %d deep", top, d)
		}
	}
}

// TestCleanVideoSizeForms checks the three ways a box gives its size: a
// blanked box keeps its 64-bit size or its size of 0 (to the end of the
// file), and a list ended by a zero word, as QuickTime writes, is taken.
func TestCleanVideoSizeForms(t *testing.T) {
	ftyp := box("ftyp", []byte("qt  "), u32(0), []byte("qt  "))
	mvhd := fullBox("mvhd", 0, 0, u32(recorded), u32(recorded), u32(1000), u32(0), u32(0x00010000), u16(0x0100), zeroBytes(10), unity, zeroBytes(24), u32(2))
	moov := box("moov", mvhd, u32(0)) // ended by a zero word
	xmp := cat(xmpUUID, []byte(xmpPacket))
	large := cat(u32(1), []byte("uuid"), u64(uint64(16+len(xmp))), xmp)
	last := cat(u32(0), []byte("meta"), []byte(plantedMake))
	in := cat(ftyp, moov, large, box("mdat", []byte("MEDIA")), last)
	out, _, err := cleanVideo(t, in)
	if err != nil {
		t.Fatal(err)
	}
	at := len(ftyp) + len(moov)
	if got, want := out[at:at+16], cat(u32(1), []byte("free"), u64(uint64(len(large)))); !bytes.Equal(got, want) {
		t.Errorf("the 64-bit box became % x, want % x", got, want)
	}
	at = len(in) - len(last)
	if got, want := out[at:at+8], cat(u32(0), []byte("free")); !bytes.Equal(got, want) {
		t.Errorf("the box to the end became % x, want % x", got, want)
	}
	if len(out) != len(in) || !bytes.Contains(out, []byte("MEDIA")) {
		t.Errorf("output of %d bytes, input %d", len(out), len(in))
	}
	assertNoPlanted(t, out)
}
