// Package media inspects uploaded photos and videos and cleans them, so that
// no location or device metadata reaches storage. A feature that takes
// uploads calls it on every file before the bytes are sealed and stored.
//
// What a file is comes from its bytes only (Detect), never from its name or
// the type a client declared.
//
// A photo (JPEG, PNG, GIF, WebP) is decoded and encoded afresh (CleanImage):
// the output holds pixels and nothing else, so EXIF (GPS position, camera
// make, model and serial, software, time stamps), XMP, IPTC, ICC profiles,
// comments, text chunks and anything appended after the image are gone. The
// EXIF orientation is applied to the pixels first, so the photo still stands
// the right way up once the tag that said so is dropped. Dimensions are
// checked before any pixel is decoded, so a small file claiming a huge
// image is refused without allocating it.
//
// A video (MP4, QuickTime, M4V, 3GP) cannot be re-encoded cheaply, so
// CleanVideo edits its box tree instead. Every box that holds metadata
// (udta with ©xyz, ©mak, ©mod, ©swr, ©day; meta with Apple's mdta keys and
// ilst; uuid with XMP; and any box the cleaner does not know a player needs)
// is turned into a free box of the same size with a zeroed payload. The
// creation and modification times in mvhd, tkhd and mdhd are zeroed, as are
// handler names, encoder names and vendor codes, and the samples of timed
// metadata tracks (GoPro GPMF, Apple mebx, camera motion) and timecode
// tracks. Nothing moves: the output has the input's length and every box
// keeps its offset, so the absolute chunk offsets in stco and co64 still
// point at the same media bytes, and the media data is copied through as a
// stream, never held in memory.
//
// What cannot be cleaned is refused with a reason rather than stored as it
// came: other containers (WebM, Matroska, AVI), malformed or truncated
// files, and files that carry another file (HTML, script, ZIP, PDF) after
// the image.
//
// The package holds no state: its functions are safe to call concurrently.
package media

import (
	"github.com/gabriel-vasile/mimetype"
)

// Kind is the broad class of an upload.
type Kind int

const (
	// Other is anything this package cannot clean: the caller refuses it or
	// treats it as an opaque file.
	Other Kind = iota
	// Image is a photo CleanImage takes: JPEG, PNG, GIF or WebP.
	Image
	// Video is a movie CleanVideo takes: MP4, QuickTime, M4V or 3GP.
	Video
)

func (k Kind) String() string {
	switch k {
	case Image:
		return "image"
	case Video:
		return "video"
	default:
		return "other"
	}
}

// The media types this package cleans, by the name Detect returns.
var cleanable = []struct {
	mime string
	kind Kind
}{
	{"image/jpeg", Image},
	{"image/png", Image},
	{"image/gif", Image},
	{"image/webp", Image},
	{"video/mp4", Video},
	{"video/quicktime", Video},
	{"video/x-m4v", Video},
	{"video/3gpp", Video},
	{"video/3gpp2", Video},
}

// Detect tells what a file is from its first bytes (3 KiB is enough; more
// is ignored). It returns the kind and the media type: for an Image or a
// Video, one of the types this package cleans; for Other, what the bytes
// look like (for a message), or "application/octet-stream".
//
// An animated PNG is an Image of type image/png: CleanImage keeps its
// default image. HEIC, AVIF and audio-only MP4 are Other.
func Detect(head []byte) (Kind, string) {
	m := mimetype.Detect(head)
	if m.Is("image/apng") {
		return Image, "image/png"
	}
	for _, c := range cleanable {
		if m.Is(c.mime) {
			return c.kind, c.mime
		}
	}
	return Other, m.String()
}

// Limits bound the work CleanImage does on one file. A zero field takes its
// default.
type Limits struct {
	// MaxBytes is the largest image file read, in bytes (default 64 MiB).
	MaxBytes int64
	// MaxPixels is the most pixels (width × height) decoded (default
	// 50 million): the image is refused before its pixels are allocated.
	MaxPixels int64
	// MaxSide is the longest width or height decoded (default 20000).
	MaxSide int
}

// Default limits, chosen for phone and camera photos: a 48-megapixel phone
// photo passes, and decoding the largest accepted image needs about 200 MB
// for the pixels (more while a progressive JPEG is decoded).
const (
	DefaultMaxBytes  = 64 << 20
	DefaultMaxPixels = 50_000_000
	DefaultMaxSide   = 20_000
)

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxPixels <= 0 {
		l.MaxPixels = DefaultMaxPixels
	}
	if l.MaxSide <= 0 {
		l.MaxSide = DefaultMaxSide
	}
	return l
}

// Info describes a cleaned file.
type Info struct {
	// MIME is the media type of the cleaned output. For a photo it can
	// differ from the input's: a GIF comes out as PNG.
	MIME string
	// Width and Height are the size in pixels of a photo after its
	// orientation was applied, or the display size of a video's first
	// video track (zero when it has none).
	Width, Height int
	// Thumbnail is a JPEG of a photo no longer than ThumbnailSide on its
	// longer side, made from the cleaned pixels. Nil for a video.
	Thumbnail []byte
	// Trailing counts the bytes found after the end of a photo (padding,
	// a camera's preview image, a phone's motion-photo clip): they were
	// dropped.
	Trailing int64
}
