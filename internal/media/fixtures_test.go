package media

// Test files made in code: photos and movies carrying the metadata a phone
// or camera writes, with planted values the tests look for afterwards.

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"testing"
)

// Values planted in the fixtures; none may survive cleaning.
const (
	plantedMake     = "PlantedMake"
	plantedModel    = "PlantedModel 9000"
	plantedSoftware = "PlantedSoftware 1.0"
	plantedComment  = "PlantedComment"
	plantedXYZ      = "+48.8583+002.2945/" // ISO 6709, the Eiffel Tower
	plantedHandler  = "PlantedHandler"
	plantedEncoder  = "PlantedEncoder"
	plantedGPMF     = "GPS5PlantedTelemetry"
)

var planted = append([]string{plantedHandler, plantedEncoder, plantedGPMF}, plantedInBoxes...)

// plantedInBoxes are the values planted in metadata boxes (Exif, XMP,
// comments; udta, meta, uuid), as opposed to those in the fields of boxes a
// player needs (handler and encoder names) or in media data (timed
// metadata), which the cleaner finds only where a handler says what a
// track holds.
var plantedInBoxes = []string{plantedMake, plantedModel, plantedSoftware, plantedComment, plantedXYZ,
	"com.apple.quicktime.location", "48.8583"}

// ---- EXIF --------------------------------------------------------------------

// tiffEntry is one IFD entry: its tag, TIFF type, count and value bytes
// (already in the file's byte order).
type tiffEntry struct {
	tag, typ uint16
	count    uint32
	value    []byte
}

// exifTIFF builds the TIFF structure of an Exif block: IFD0 with Make,
// Model, Orientation, Software and a pointer to a GPS IFD holding the
// position of the Eiffel Tower.
func exifTIFF(order binary.AppendByteOrder, orientation int) []byte {
	short := func(v uint16) []byte { return order.AppendUint16(nil, v) }
	ascii := func(s string) (uint32, []byte) { return uint32(len(s) + 1), append([]byte(s), 0) }
	rationals := func(v ...uint32) []byte {
		var b []byte
		for i := 0; i < len(v); i += 2 {
			b = order.AppendUint32(order.AppendUint32(b, v[i]), v[i+1])
		}
		return b
	}
	entry := func(tag, typ uint16, count uint32, value []byte) tiffEntry {
		return tiffEntry{tag, typ, count, value}
	}
	text := func(tag uint16, s string) tiffEntry {
		n, v := ascii(s)
		return entry(tag, 2, n, v)
	}
	gps := []tiffEntry{
		entry(0x0000, 1, 4, []byte{2, 3, 0, 0}),
		text(0x0001, "N"),
		entry(0x0002, 5, 3, rationals(48, 1, 51, 1, 2988, 100)),
		text(0x0003, "E"),
		entry(0x0004, 5, 3, rationals(2, 1, 17, 1, 4020, 100)),
	}
	ifd0 := []tiffEntry{
		text(0x010F, plantedMake),
		text(0x0110, plantedModel),
		entry(0x0112, 3, 1, short(uint16(orientation))),
		text(0x0131, plantedSoftware),
		entry(0x8825, 4, 1, nil), // GPS IFD pointer, filled below
	}
	ifdSize := func(e []tiffEntry) int { return 2 + 12*len(e) + 4 }
	dataSize := func(e []tiffEntry) int {
		n := 0
		for _, x := range e {
			if len(x.value) > 4 {
				n += len(x.value) + len(x.value)%2
			}
		}
		return n
	}
	gpsAt := 8 + ifdSize(ifd0) + dataSize(ifd0)
	ifd0[4].value = order.AppendUint32(nil, uint32(gpsAt))

	out := []byte("II*\x00")
	if order == binary.BigEndian {
		out = []byte("MM\x00*")
	}
	out = order.AppendUint32(out, 8)
	writeIFD := func(entries []tiffEntry) {
		at := len(out)
		data := at + ifdSize(entries)
		var tail []byte
		out = order.AppendUint16(out, uint16(len(entries)))
		for _, e := range entries {
			out = order.AppendUint16(out, e.tag)
			out = order.AppendUint16(out, e.typ)
			out = order.AppendUint32(out, e.count)
			if len(e.value) > 4 {
				out = order.AppendUint32(out, uint32(data+len(tail)))
				tail = append(tail, e.value...)
				if len(e.value)%2 == 1 {
					tail = append(tail, 0)
				}
				continue
			}
			var v [4]byte
			copy(v[:], e.value)
			out = append(out, v[:]...)
		}
		out = order.AppendUint32(out, 0) // no next IFD
		out = append(out, tail...)
	}
	writeIFD(ifd0)
	writeIFD(gps)
	return out
}

// xmpPacket is an XMP packet with a position, a camera and a creator tool.
const xmpPacket = `<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:exif="http://ns.adobe.com/exif/1.0/" xmlns:tiff="http://ns.adobe.com/tiff/1.0/" xmlns:xmp="http://ns.adobe.com/xap/1.0/"
 exif:GPSLatitude="48,51.4980N" exif:GPSLongitude="2,17.6700E" tiff:Make="` + plantedMake + `" tiff:Model="` + plantedModel + `" xmp:CreatorTool="` + plantedSoftware + `"/>
</rdf:RDF></x:xmpmeta>
<?xpacket end="w"?>`

// ---- photos ------------------------------------------------------------------

// halves is a w×h image whose left half is white and right half black:
// lossy coding keeps which side is which.
func halves(w, h int) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range (w + 1) / 2 {
			img.SetGray(x, y, color.Gray{Y: 255})
		}
	}
	return img
}

// distinct is a w×h image whose every pixel has its own grey.
func distinct(w, h int) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(10 + i*7)
	}
	return img
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// jpegSegment returns a marker segment: 0xFF, marker, length, payload.
func jpegSegment(marker byte, payload []byte) []byte {
	return append([]byte{0xFF, marker, byte((len(payload) + 2) >> 8), byte(len(payload) + 2)}, payload...)
}

// withSegments inserts segments right after a JPEG's start-of-image marker.
func withSegments(jpg []byte, segments ...[]byte) []byte {
	out := append([]byte{}, jpg[:2]...)
	for _, s := range segments {
		out = append(out, s...)
	}
	return append(out, jpg[2:]...)
}

// exifJPEG is a JPEG of img carrying an Exif block (camera, software,
// orientation, GPS), an XMP packet and a comment.
func exifJPEG(t testing.TB, img image.Image, orientation int) []byte {
	return withSegments(encodeJPEG(t, img),
		jpegSegment(0xE1, append([]byte("Exif\x00\x00"), exifTIFF(binary.BigEndian, orientation)...)),
		jpegSegment(0xE1, append([]byte("http://ns.adobe.com/xap/1.0/\x00"), xmpPacket...)),
		jpegSegment(0xFE, []byte(plantedComment)),
	)
}

// pngChunk returns a PNG chunk with its CRC.
func pngChunk(typ string, data []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	b = append(b, typ...)
	b = append(b, data...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[4:]))
}

// exifPNG is a PNG of img with an eXIf chunk before its image data and a
// tEXt comment.
func exifPNG(t testing.TB, img image.Image, orientation int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	p := b.Bytes()
	ihdrEnd := 8 + 12 + 13
	out := append([]byte{}, p[:ihdrEnd]...)
	out = append(out, pngChunk("eXIf", exifTIFF(binary.LittleEndian, orientation))...)
	out = append(out, pngChunk("tEXt", []byte("Comment\x00"+plantedComment))...)
	return append(out, p[ihdrEnd:]...)
}

// commentGIF is a GIF of img with a comment extension.
func commentGIF(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := gif.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	g := b.Bytes()
	at := 13
	if g[10]&0x80 != 0 {
		at += 3 << (g[10]&7 + 1)
	}
	comment := append([]byte{0x21, 0xFE, byte(len(plantedComment))}, plantedComment...)
	comment = append(comment, 0)
	return append(append(append([]byte{}, g[:at]...), comment...), g[at:]...)
}

// lossyWebP is a 1×1 lossy WebP (the one browsers' feature tests use).
var lossyWebP = []byte("RIFF\x22\x00\x00\x00WEBPVP8 \x16\x00\x00\x00\x30\x01\x00\x9d\x01\x2a\x01\x00\x01\x00\x0e\xc0\xfe\x25\xa4\x00\x03\x70\x00\x00\x00\x00")

// losslessWebP is a 1×1 lossless WebP.
var losslessWebP = []byte("RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00")

// riff wraps WebP chunks in a RIFF header.
func riff(chunks ...[]byte) []byte {
	body := []byte("WEBP")
	for _, c := range chunks {
		body = append(body, c...)
	}
	return append(binary.LittleEndian.AppendUint32([]byte("RIFF"), uint32(len(body))), body...)
}

func riffChunk(id string, data []byte) []byte {
	b := append(binary.LittleEndian.AppendUint32([]byte(id), uint32(len(data))), data...)
	if len(data)%2 == 1 {
		b = append(b, 0)
	}
	return b
}

// exifWebP is the 1×1 lossy WebP in the extended format, with an EXIF and
// an XMP chunk.
func exifWebP() []byte {
	vp8x := []byte{0x08 | 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0} // EXIF and XMP flags, a 1×1 canvas
	return riff(
		riffChunk("VP8X", vp8x),
		lossyWebP[12:],
		riffChunk("EXIF", exifTIFF(binary.LittleEndian, 1)),
		riffChunk("XMP ", []byte(xmpPacket)),
	)
}

// ---- movies ------------------------------------------------------------------

func box(typ string, parts ...[]byte) []byte {
	n := 8
	for _, p := range parts {
		n += len(p)
	}
	b := binary.BigEndian.AppendUint32(make([]byte, 0, n), uint32(n))
	b = append(b, typ...)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func fullBox(typ string, version byte, flags uint32, parts ...[]byte) []byte {
	return box(typ, append([]byte{version, byte(flags >> 16), byte(flags >> 8), byte(flags)}, cat(parts...)...))
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
func u16(v uint16) []byte        { return binary.BigEndian.AppendUint16(nil, v) }
func u32(v uint32) []byte        { return binary.BigEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte        { return binary.BigEndian.AppendUint64(nil, v) }
func zeroBytes(n int) []byte     { return make([]byte, n) }

// unity is the identity matrix of mvhd and tkhd.
var unity = cat(u32(0x00010000), u32(0), u32(0), u32(0), u32(0x00010000), u32(0), u32(0), u32(0), u32(0x40000000))

// xmpUUID is the user type of the uuid box that holds XMP.
var xmpUUID = []byte{0xBE, 0x7A, 0xCF, 0xCB, 0x97, 0xA9, 0x42, 0xE8, 0x9C, 0x71, 0x99, 0x94, 0x91, 0xE3, 0xAF, 0xAC}

// A camera's clock, 2024-05-01 in seconds since 1904.
const recorded = 3797500000

// movieSpec says how to lay out a test movie.
type movieSpec struct {
	brand     string // "isom" for MP4, "qt  " for QuickTime
	mdatFirst bool   // the media data before the movie box, as cameras write
	large     bool   // a 64-bit mdat size and co64 offsets
	compact   bool   // the metadata track's sample sizes in stz2, 16 bits each
	video     []byte // the video sample; a default when nil
}

// testMovie is a movie and where its parts lie.
type testMovie struct {
	file      []byte
	videoAt   int64 // the video sample
	video     []byte
	gpmfAt    int64 // the timed-metadata sample
	udtaAt    int64 // the movie's user data box
	udtaSize  int
	xmpAt     int64 // the top-level uuid box with XMP
	moovAt    int64
	mdatAt    int64
	mdatSize  int64
	videoSize int
}

// buildMovie makes a movie with a video track, a GoPro-style timed
// metadata track, user data (©xyz, ©mak, ©mod, ©swr, ©day), Apple mdta
// metadata (location, make, model, software, creation date) and an XMP uuid
// box: each place a phone or camera writes who, where and when.
func buildMovie(s movieSpec) testMovie {
	if s.brand == "" {
		s.brand = "isom"
	}
	video := s.video
	if video == nil {
		video = bytes.Repeat([]byte("VIDEO-SAMPLE-"), 40)
	}
	gpmf := []byte(plantedGPMF + " 48.858347N 2.294481E")

	ftyp := box("ftyp", []byte(s.brand), u32(0x200), []byte(s.brand), []byte("iso2mp41"))
	if s.brand == "qt  " {
		ftyp = box("ftyp", []byte("qt  "), u32(0x20050300), []byte("qt  "))
	}
	xmp := box("uuid", xmpUUID, []byte(xmpPacket))

	mdatHeader := 8
	if s.large {
		mdatHeader = 16
	}
	moov := func(videoAt, gpmfAt int64) ([]byte, int) {
		offsets := func(at int64) []byte {
			if s.large {
				return fullBox("co64", 0, 0, u32(1), u64(uint64(at)))
			}
			return fullBox("stco", 0, 0, u32(1), u32(uint32(at)))
		}
		stbl := func(entry []byte, size int, at int64, compact bool) []byte {
			sizes := fullBox("stsz", 0, 0, u32(0), u32(1), u32(uint32(size)))
			if compact {
				sizes = fullBox("stz2", 0, 0, []byte{0, 0, 0, 16}, u32(1), u16(uint16(size)))
			}
			return box("stbl",
				fullBox("stsd", 0, 0, u32(1), entry),
				fullBox("stts", 0, 0, u32(1), u32(1), u32(2000)),
				fullBox("stsc", 0, 0, u32(1), u32(1), u32(1), u32(1)),
				sizes,
				offsets(at))
		}
		dinf := box("dinf", fullBox("dref", 0, 0, u32(1), fullBox("url ", 0, 1)))
		name := make([]byte, 32)
		name[0] = byte(len(plantedEncoder))
		copy(name[1:], plantedEncoder)
		avc1 := box("avc1", zeroBytes(6), u16(1), u16(0), u16(0), []byte("appl"), u32(0), u32(0),
			u16(640), u16(480), u32(0x00480000), u32(0x00480000), u32(0), u16(1), name, u16(24), u16(0xFFFF))
		gpmd := box("gpmd", zeroBytes(6), u16(1))
		tkhd := func(id uint32, w, h uint32) []byte {
			return fullBox("tkhd", 0, 7, u32(recorded), u32(recorded+60), u32(id), u32(0), u32(2000),
				zeroBytes(8), u16(0), u16(0), u16(0), u16(0), unity, u32(w<<16), u32(h<<16))
		}
		mdhd := fullBox("mdhd", 0, 0, u32(recorded), u32(recorded+60), u32(1000), u32(2000), u16(0x55C4), u16(0))
		hdlr := func(typ, name string) []byte {
			return fullBox("hdlr", 0, 0, u32(0), []byte(typ), zeroBytes(12), []byte(name+"\x00"))
		}
		qtText := func(s string) []byte { return cat(u16(uint16(len(s))), u16(0x15C7), []byte(s)) }
		keys := []string{"com.apple.quicktime.location.ISO6709", "com.apple.quicktime.make",
			"com.apple.quicktime.model", "com.apple.quicktime.software", "com.apple.quicktime.creationdate"}
		values := []string{plantedXYZ, plantedMake, plantedModel, plantedSoftware, "2024-05-01T12:00:00+0200"}
		var keyBoxes, items []byte
		for i, k := range keys {
			keyBoxes = append(keyBoxes, box("mdta", []byte(k))...)
			items = append(items, box(string(u32(uint32(i+1))), box("data", u32(1), u32(0), []byte(values[i])))...)
		}
		m := box("moov",
			fullBox("mvhd", 1, 0, u64(recorded), u64(recorded+60), u32(1000), u64(2000), u32(0x00010000), u16(0x0100),
				zeroBytes(10), unity, zeroBytes(24), u32(3)),
			box("trak",
				tkhd(1, 640, 480),
				box("mdia", mdhd, hdlr("vide", plantedHandler),
					box("minf", fullBox("vmhd", 0, 1, zeroBytes(8)), dinf, stbl(avc1, len(video), videoAt, false))),
				box("udta", box("name", []byte(plantedHandler)))),
			box("trak",
				tkhd(2, 0, 0),
				box("mdia", mdhd, hdlr("meta", "GoPro MET"),
					box("minf", fullBox("nmhd", 0, 0), dinf, stbl(gpmd, len(gpmf), gpmfAt, s.compact)))),
			box("udta",
				box("\xA9xyz", qtText(plantedXYZ)),
				box("\xA9mak", qtText(plantedMake)),
				box("\xA9mod", qtText(plantedModel)),
				box("\xA9swr", qtText(plantedSoftware)),
				box("\xA9day", qtText("2024-05-01T12:00:00+0200"))),
			box("meta",
				hdlr("mdta", ""),
				fullBox("keys", 0, 0, u32(uint32(len(keys))), keyBoxes),
				box("ilst", items)),
		)
		return m, bytes.Index(m, []byte("\xA9xyz")) - 12 // its first child is ©xyz
	}

	probe, _ := moov(0, 0)
	mdatAt := int64(len(ftyp) + len(xmp))
	if !s.mdatFirst {
		mdatAt += int64(len(probe))
	}
	videoAt := mdatAt + int64(mdatHeader)
	gpmfAt := videoAt + int64(len(video))
	m, udta := moov(videoAt, gpmfAt)

	payload := cat(video, gpmf)
	var mdat []byte
	if s.large {
		mdat = cat(u32(1), []byte("mdat"), u64(uint64(16+len(payload))), payload)
	} else {
		mdat = box("mdat", payload)
	}
	tm := testMovie{video: video, videoAt: videoAt, gpmfAt: gpmfAt, xmpAt: int64(len(ftyp)),
		mdatAt: mdatAt, mdatSize: int64(len(mdat)), videoSize: len(video)}
	if s.mdatFirst {
		tm.file = cat(ftyp, xmp, mdat, m)
		tm.moovAt = mdatAt + int64(len(mdat))
	} else {
		tm.file = cat(ftyp, xmp, m, mdat)
		tm.moovAt = mdatAt - int64(len(m))
	}
	tm.udtaAt = tm.moovAt + int64(udta)
	tm.udtaSize = int(binary.BigEndian.Uint32(tm.file[tm.udtaAt:]))
	return tm
}

// fragmentedMovie is a fragmented MP4 (as streaming encoders write) with
// metadata in its movie box, its fragment and at the top level.
func fragmentedMovie() []byte {
	ftyp := box("ftyp", []byte("iso5"), u32(0), []byte("iso5dash"))
	moov := box("moov",
		fullBox("mvhd", 0, 0, u32(recorded), u32(recorded), u32(1000), u32(0), u32(0x00010000), u16(0x0100), zeroBytes(10), unity, zeroBytes(24), u32(2)),
		box("mvex", fullBox("trex", 0, 0, u32(1), u32(1), u32(0), u32(0), u32(0))),
		box("udta", box("\xA9xyz", []byte(plantedXYZ))))
	moof := box("moof",
		fullBox("mfhd", 0, 0, u32(1)),
		box("traf", fullBox("tfhd", 0, 0x20000, u32(1)), fullBox("trun", 0, 0, u32(0)), box("udta", []byte(plantedMake))),
		box("uuid", xmpUUID, []byte(plantedModel)))
	return cat(ftyp, moov, moof, box("mdat", []byte("FRAGMENT")), box("prft", []byte(plantedSoftware)))
}
