package media

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"steward/internal/fault"
)

// Bounds on what CleanVideo accepts. A phone's hour of video has a movie
// box of a few MiB and a dozen top-level boxes; a fragmented stream has two
// per fragment.
const (
	maxMovieBox  = 64 << 20 // the largest moov or moof held in memory
	maxTopBoxes  = 1 << 20
	maxMetaSpans = 1 << 20 // runs of timed-metadata samples zeroed in one file
)

// What CleanVideo does with a top-level box.
type action int

const (
	blank     action = iota // a free box of the same size, payload zeroed: anything not listed
	keep                    // copied as it is
	clean                   // read into memory, cleaned box by box, written
	mediaData               // mdat: streamed, with timed-metadata samples zeroed
)

var topActions = map[string]action{
	"ftyp": keep, "styp": keep, "sidx": keep, "ssix": keep, "mfra": keep, "pdin": keep,
	"moov": clean, "moof": clean,
	"mdat": mediaData,
}

// topBox is a box at the top level of the file.
type topBox struct {
	typ       string
	off, size int64
	hdr       int64 // 8, or 16 with a 64-bit size
	toEnd     bool  // its size field is 0: it runs to the end of the file
}

// span is a run of bytes [start, end) in the file.
type span struct{ start, end int64 }

// CleanVideo reads an MP4, QuickTime, M4V or 3GP movie of size bytes from r
// and writes it to w without location and device metadata, as the package
// comment describes. The output has exactly the input's length and layout;
// media data is streamed, and only the movie box (moov, at most 64 MiB) is
// held in memory. The creation and modification times of the movie, its
// tracks and their media are zeroed too: a camera writes its own clock
// there, the moment and time zone of the recording.
//
// It refuses other containers, such as WebM, Matroska and AVI
// (fault.Unsupported), and any file whose structure it cannot walk with
// certainty: a box past the end of its parent or smaller than its header,
// stray bytes, sample tables that disagree, no movie box (fault.Invalid).
// It checks the whole structure before writing, but on error whatever was
// written to w must still be discarded.
func CleanVideo(r io.ReaderAt, size int64, w io.Writer) (Info, error) {
	head := make([]byte, min(max(size, 0), 3072))
	if err := readFull(r, head, 0); err != nil {
		return Info{}, err
	}
	kind, mime := Detect(head)
	if kind != Video {
		return Info{}, refuseVideo(mime)
	}
	m := &movie{r: r, size: size}
	if err := m.plan(); err != nil {
		return Info{}, err
	}
	if err := m.write(w); err != nil {
		return Info{}, err
	}
	m.info.MIME = mime
	return m.info, nil
}

// refuseVideo explains why a file that is not a movie this package cleans
// is refused.
func refuseVideo(mime string) error {
	names := map[string]string{
		"video/webm": "WebM", "video/matroska": "Matroska", "video/x-matroska": "Matroska",
		"video/x-msvideo": "AVI", "video/x-flv": "Flash", "video/mpeg": "MPEG",
		"video/ogg": "Ogg", "video/x-ms-asf": "Windows Media",
	}
	if name, ok := names[mime]; ok {
		return fault.New(fault.Unsupported, "%s videos cannot be cleaned of location and device metadata: upload MP4 or QuickTime", name)
	}
	return fault.New(fault.Unsupported, "the file is not a video this service can clean (found %s): upload MP4 or QuickTime", mime)
}

func corruptVideo(format string, args ...any) error {
	return fault.Wrap(fault.Invalid, fmt.Errorf(format, args...), "the video is truncated or corrupt")
}

// movie is one CleanVideo run: plan walks and checks the whole file and
// cleans the movie box before write sends a byte.
type movie struct {
	r     io.ReaderAt
	size  int64
	tops  []topBox
	moov  []byte // the cleaned movie box
	mdats []span // the payloads of the media data boxes, in file order
	zero  []span // timed-metadata samples, sorted and merged
	info  Info
}

// plan walks the top-level boxes, checks every size against the file,
// cleans the movie box and fragments in memory, and places the
// timed-metadata samples to zero.
func (m *movie) plan() error {
	var moov *boxCleaner
	fragmented := false
	for off := int64(0); off < m.size; {
		if len(m.tops) == maxTopBoxes {
			return corruptVideo("more than %d top-level boxes", maxTopBoxes)
		}
		b, err := m.readTop(off)
		if err != nil {
			return err
		}
		m.tops = append(m.tops, b)
		off += b.size
		switch b.typ {
		case "moov":
			if moov != nil {
				return corruptVideo("a second movie box at %d", b.off)
			}
			buf, c, err := m.cleanBox(b)
			if err != nil {
				return err
			}
			m.moov, moov = buf, c
			m.info.Width, m.info.Height = c.width, c.height
		case "moof":
			fragmented = true
			if _, _, err := m.cleanBox(b); err != nil {
				return err
			}
		case "mdat":
			m.mdats = append(m.mdats, span{b.off + b.hdr, b.off + b.size})
		}
	}
	if moov == nil {
		return corruptVideo("no movie box")
	}
	if moov.metaTracks > 0 && fragmented {
		return fault.New(fault.Unsupported, "timed metadata in a fragmented movie cannot be cleaned: re-export the video as a plain MP4")
	}
	return m.placeZeros(moov.spans)
}

// readTop reads and checks the header of the top-level box at off.
func (m *movie) readTop(off int64) (topBox, error) {
	var h [16]byte
	n := min(int64(len(h)), m.size-off)
	if err := readFull(m.r, h[:n], off); err != nil {
		return topBox{}, err
	}
	bh, err := parseHeader(h[:n], m.size-off)
	if err != nil {
		return topBox{}, corruptVideo("box at %d: %w", off, err)
	}
	return topBox{typ: bh.typ, off: off, size: bh.size, hdr: bh.hdr, toEnd: bh.toEnd}, nil
}

// cleanBox reads a moov or moof box and cleans it in memory.
func (m *movie) cleanBox(b topBox) ([]byte, *boxCleaner, error) {
	if b.size > maxMovieBox {
		return nil, nil, fault.New(fault.TooLarge, "the video's %s box is larger than %d MiB", b.typ, maxMovieBox>>20)
	}
	buf := make([]byte, b.size)
	if err := readFull(m.r, buf, b.off); err != nil {
		return nil, nil, err
	}
	c := &boxCleaner{}
	if err := c.walk(buf[b.hdr:], b.typ); err != nil {
		if _, coded := errors.AsType[*fault.Error](err); coded {
			return nil, nil, err
		}
		return nil, nil, corruptVideo("%s at %d: %w", b.typ, b.off, err)
	}
	return buf, c, nil
}

// placeZeros checks that every timed-metadata sample lies inside one media
// data box, then sorts and merges them.
func (m *movie) placeZeros(spans []span) error {
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	for _, s := range spans {
		i, _ := slices.BinarySearchFunc(m.mdats, s.start, func(d span, off int64) int {
			return cmp.Compare(d.end, off+1) // the first box that ends after s.start
		})
		if i == len(m.mdats) || s.start < m.mdats[i].start || s.end > m.mdats[i].end || s.end <= s.start {
			return corruptVideo("metadata samples at %d–%d lie outside the media data", s.start, s.end)
		}
		if n := len(m.zero); n > 0 && s.start <= m.zero[n-1].end {
			m.zero[n-1].end = max(m.zero[n-1].end, s.end)
			continue
		}
		m.zero = append(m.zero, s)
	}
	return nil
}

// write sends the cleaned file to w, box by box, in the input's order.
func (m *movie) write(w io.Writer) error {
	zero := m.zero
	for _, b := range m.tops {
		var err error
		switch topActions[b.typ] {
		case keep:
			err = m.stream(w, b.off, b.size)
		case clean:
			buf := m.moov
			if b.typ == "moof" {
				buf, _, err = m.cleanBox(b)
			}
			if err == nil {
				if _, err = w.Write(buf); err != nil {
					err = fmt.Errorf("media: write video: %w", err)
				}
			}
		case mediaData:
			zero, err = m.copyZeroing(w, b, zero)
		default:
			err = writeFree(w, b)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// stream copies n bytes at off from the input to w.
func (m *movie) stream(w io.Writer, off, n int64) error {
	if n <= 0 {
		return nil
	}
	got, err := io.Copy(w, io.NewSectionReader(m.r, off, n))
	if err == nil && got < n {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return fmt.Errorf("media: copy video at %d: %w", off, err)
	}
	return nil
}

// copyZeroing streams a media data box, writing zeros over the spans that
// fall in it, and returns the spans after it.
func (m *movie) copyZeroing(w io.Writer, b topBox, zero []span) ([]span, error) {
	pos, end := b.off, b.off+b.size
	for len(zero) > 0 && zero[0].start < end {
		z := zero[0]
		if err := m.stream(w, pos, z.start-pos); err != nil {
			return nil, err
		}
		if err := writeZeros(w, z.end-z.start); err != nil {
			return nil, err
		}
		pos, zero = z.end, zero[1:]
	}
	return zero, m.stream(w, pos, end-pos)
}

// writeFree writes a free box in place of b: the same size, written the
// same way, with a zeroed payload.
func writeFree(w io.Writer, b topBox) error {
	var h [16]byte
	switch {
	case b.hdr == 16:
		binary.BigEndian.PutUint32(h[:], 1)
		binary.BigEndian.PutUint64(h[8:], uint64(b.size))
	case !b.toEnd:
		binary.BigEndian.PutUint32(h[:], uint32(b.size))
	}
	copy(h[4:8], "free")
	if _, err := w.Write(h[:b.hdr]); err != nil {
		return fmt.Errorf("media: write video: %w", err)
	}
	return writeZeros(w, b.size-b.hdr)
}

// zeros is never written to: it is the source of writeZeros.
var zeros [32 << 10]byte

func writeZeros(w io.Writer, n int64) error {
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if _, err := w.Write(zeros[:k]); err != nil {
			return fmt.Errorf("media: write video: %w", err)
		}
		n -= k
	}
	return nil
}

// readFull fills p from r at off; a short read is an error, as every read
// lies inside the size the caller gave.
func readFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("media: read video at %d: %w", off, err)
}
