package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// layout is what walking an image file's structure tells before its pixels
// are decoded.
type layout struct {
	end          int  // offset just past the image: what follows is not part of it
	orientation  int  // the EXIF orientation, 1 (as stored) to 8
	animatedWebP bool // x/image/webp decodes still images only
}

var errTruncated = errors.New("the file ends inside the image")

// scanJPEG walks a JPEG's segments and entropy-coded scans to its
// end-of-image marker, and reads the orientation from its first Exif APP1
// segment before the image data (browsers ignore a later one).
func scanJPEG(b []byte) (layout, error) {
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		return layout{}, errors.New("jpeg: no start-of-image marker")
	}
	l := layout{orientation: 1}
	exifSeen := false // or too late: after the first scan
	p := 2
	for {
		// Bytes between segments are a format error that libjpeg and
		// Go's decoder both skip; so does this walk.
		for p < len(b) && b[p] != 0xFF {
			p++
		}
		for p < len(b) && b[p] == 0xFF {
			p++
		}
		if p >= len(b) {
			return layout{}, errTruncated
		}
		marker := b[p]
		p++
		switch {
		case marker == 0xD9: // end of image
			l.end = p
			return l, nil
		case marker == 0x00, marker == 0x01, marker >= 0xD0 && marker <= 0xD7:
			continue // markers without a length
		}
		if p+2 > len(b) {
			return layout{}, errTruncated
		}
		n := int(binary.BigEndian.Uint16(b[p:]))
		if n < 2 {
			return layout{}, fmt.Errorf("jpeg: segment %#x has length %d", marker, n)
		}
		if p+n > len(b) {
			return layout{}, errTruncated
		}
		seg := b[p+2 : p+n]
		p += n
		if marker == 0xE1 && !exifSeen && bytes.HasPrefix(seg, []byte("Exif\x00\x00")) {
			exifSeen = true
			l.orientation = tiffOrientation(seg[6:])
		}
		if marker != 0xDA {
			continue
		}
		exifSeen = true
		// Entropy-coded data runs to the next marker that is neither a
		// stuffed 0xFF00 nor a restart marker.
		for {
			i := bytes.IndexByte(b[p:], 0xFF)
			if i < 0 || p+i+1 >= len(b) {
				return layout{}, errTruncated
			}
			p += i
			next := b[p+1]
			if next == 0x00 || next >= 0xD0 && next <= 0xD7 {
				p += 2
				continue
			}
			if next == 0xFF {
				p++
				continue
			}
			break
		}
	}
}

// scanPNG walks a PNG's chunks to IEND, and reads the orientation from an
// eXIf chunk placed before the image data (browsers ignore a later one).
func scanPNG(b []byte) (layout, error) {
	if len(b) < 8 || string(b[:8]) != "\x89PNG\r\n\x1a\n" {
		return layout{}, errors.New("png: no signature")
	}
	l := layout{orientation: 1}
	seenIDAT, seenEXIF := false, false
	for p := 8; ; {
		if p+8 > len(b) {
			return layout{}, errTruncated
		}
		n := int64(binary.BigEndian.Uint32(b[p:]))
		if n > 1<<31-1 {
			return layout{}, fmt.Errorf("png: chunk of %d bytes", n)
		}
		end := int64(p) + 12 + n
		if end > int64(len(b)) {
			return layout{}, errTruncated
		}
		data := b[p+8 : p+8+int(n)]
		switch string(b[p+4 : p+8]) {
		case "IDAT":
			seenIDAT = true
		case "eXIf":
			if !seenIDAT && !seenEXIF {
				seenEXIF = true
				l.orientation = tiffOrientation(bytes.TrimPrefix(data, []byte("Exif\x00\x00")))
			}
		case "IEND":
			l.end = int(end)
			return l, nil
		}
		p = int(end)
	}
}

// scanGIF walks a GIF's blocks to its trailer. A file that stops cleanly
// between blocks without a trailer is taken whole, as browsers show it.
func scanGIF(b []byte) (layout, error) {
	l := layout{orientation: 1}
	if len(b) < 13 {
		return layout{}, errTruncated
	}
	p := 13 // header and logical screen descriptor
	if flags := b[10]; flags&0x80 != 0 {
		p += 3 << (flags&7 + 1) // global color table
	}
	for {
		if p == len(b) {
			l.end = p
			return l, nil
		}
		if p > len(b) {
			return layout{}, errTruncated
		}
		block := b[p]
		p++
		switch block {
		case 0x3B: // trailer
			l.end = p
			return l, nil
		case 0x21: // extension: a label, then data sub-blocks
			p++
		case 0x2C: // image descriptor, local color table, LZW code size, data sub-blocks
			if p+9 > len(b) {
				return layout{}, errTruncated
			}
			flags := b[p+8]
			p += 9
			if flags&0x80 != 0 {
				p += 3 << (flags&7 + 1)
			}
			p++
		default:
			return layout{}, fmt.Errorf("gif: unknown block %#x", block)
		}
		for {
			if p >= len(b) {
				return layout{}, errTruncated
			}
			n := int(b[p])
			p += 1 + n
			if n == 0 {
				break
			}
		}
	}
}

// scanWebP reads a WebP's extent from its RIFF header and walks its chunks.
// Its EXIF orientation is not read: browsers display WebP without it.
func scanWebP(b []byte) (layout, error) {
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WEBP" {
		return layout{}, errors.New("webp: no RIFF header")
	}
	end := 8 + int64(binary.LittleEndian.Uint32(b[4:]))
	if end > int64(len(b)) {
		return layout{}, errTruncated
	}
	l := layout{orientation: 1, end: int(end)}
	for p := int64(12); p < end; {
		if p+8 > end {
			return layout{}, errTruncated
		}
		n := int64(binary.LittleEndian.Uint32(b[p+4:]))
		if p+8+n > end {
			return layout{}, errTruncated
		}
		switch string(b[p : p+4]) {
		case "VP8X":
			if n >= 1 && b[p+8]&0x02 != 0 {
				l.animatedWebP = true
			}
		case "ANIM", "ANMF":
			l.animatedWebP = true
		}
		p += 8 + n + n&1
	}
	return l, nil
}

// tiffOrientation reads the Orientation tag (0x0112) of IFD0 in a TIFF
// structure, the body of an Exif block. Anything unreadable counts as 1,
// as stored: the block is dropped in any case.
func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return 1
	}
	var order binary.ByteOrder
	switch string(t[:4]) {
	case "II*\x00":
		order = binary.LittleEndian
	case "MM\x00*":
		order = binary.BigEndian
	default:
		return 1
	}
	ifd := int64(order.Uint32(t[4:]))
	if ifd < 8 || ifd+2 > int64(len(t)) {
		return 1
	}
	count := int64(order.Uint16(t[ifd:]))
	for i := int64(0); i < count; i++ {
		e := ifd + 2 + 12*i
		if e+12 > int64(len(t)) {
			return 1
		}
		if order.Uint16(t[e:]) != 0x0112 {
			continue
		}
		if typ := order.Uint16(t[e+2:]); typ != 3 { // SHORT
			return 1
		}
		if o := int(order.Uint16(t[e+8:])); o >= 1 && o <= 8 {
			return o
		}
		return 1
	}
	return 1
}

// trailerScan is how far into the bytes after an image appendedFile looks
// for markup: polyglots are made by appending a file, so it starts there.
// Searching further in a phone's multi-megabyte motion-photo clip would
// refuse real photos by chance.
const trailerScan = 64 << 10

// markup is what HTML, SVG and PHP start with, in lower case.
var markup = []string{"<html", "<!doctype", "<script", "<iframe", "<body", "<svg", "<?php"}

// appendedFile names the kind of file that follows an image in trailing,
// or returns "" when what follows is not a file someone could open as
// another type. Cameras pad with zeros or 0xFF and phones append preview
// images, gain maps and motion clips: those pass (and are dropped).
func appendedFile(trailing []byte) string {
	if len(trailing) == 0 {
		return ""
	}
	start := bytes.TrimLeft(trailing, "\x00\xff \t\r\n")
	head := bytes.ToLower(start[:min(len(start), trailerScan)])
	for _, m := range markup {
		if bytes.Contains(head, []byte(m)) {
			return "HTML or script"
		}
	}
	switch {
	case bytes.HasPrefix(start, []byte("PK\x03\x04")) || zipEnds(trailing):
		return "ZIP archive"
	case bytes.Contains(head, []byte("%pdf-")):
		return "PDF"
	}
	return ""
}

// zipEnds reports whether b ends with a ZIP end-of-central-directory
// record, where unzip looks, however far the archive itself lies before it.
func zipEnds(b []byte) bool {
	const record = 22 // bytes, before a comment of at most 65535
	for i := len(b) - record; i >= 0 && i >= len(b)-record-0xFFFF; i-- {
		if b[i] == 'P' && string(b[i:i+4]) == "PK\x05\x06" &&
			i+record+int(binary.LittleEndian.Uint16(b[i+20:])) == len(b) {
			return true
		}
	}
	return false
}
