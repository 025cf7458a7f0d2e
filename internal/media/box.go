package media

import (
	"encoding/binary"
	"fmt"

	"steward/internal/fault"
)

// boxHeader is the parsed header of an ISO base media file box.
type boxHeader struct {
	typ   string
	hdr   int64 // 8, or 16 with a 64-bit size; a uuid's user type counts as payload
	size  int64 // the whole box, header included
	toEnd bool  // the size field is 0: the box runs to the end of its parent
}

// parseHeader parses the box header at the start of h, for a box that may
// take at most avail bytes. h holds at least 16 bytes or all of avail.
func parseHeader(h []byte, avail int64) (boxHeader, error) {
	if len(h) < 8 {
		return boxHeader{}, fmt.Errorf("%d stray bytes where a box should start", len(h))
	}
	bh := boxHeader{typ: string(h[4:8]), hdr: 8}
	size := uint64(binary.BigEndian.Uint32(h))
	switch size {
	case 1:
		if len(h) < 16 {
			return boxHeader{}, fmt.Errorf("%q box: its 64-bit size is cut short", bh.typ)
		}
		size = binary.BigEndian.Uint64(h[8:])
		bh.hdr = 16
	case 0:
		size = uint64(avail)
		bh.toEnd = true
	}
	least := uint64(bh.hdr)
	if bh.typ == "uuid" {
		least += 16
	}
	if size < least {
		return boxHeader{}, fmt.Errorf("%q box of %d bytes is smaller than its header", bh.typ, size)
	}
	if size > uint64(avail) {
		return boxHeader{}, fmt.Errorf("%q box of %d bytes runs past its parent, which has %d bytes left", bh.typ, size, avail)
	}
	bh.size = int64(size)
	return bh, nil
}

// children lists, for each box the cleaner walks into, the child boxes it
// keeps. A child not listed is blanked: no player needs it, and a box no
// player needs can hold anything (udta with ©xyz, ©mak, ©mod, ©swr and
// ©day; meta with Apple's keys and ilst; uuid with XMP; vendor boxes).
var children = map[string]map[string]bool{
	"moov": set("mvhd", "trak", "iods", "mvex", "pssh"),
	"trak": set("tkhd", "tref", "edts", "mdia", "tapt", "load", "clip", "matt", "imap", "txas", "trgr"),
	"mdia": set("mdhd", "hdlr", "minf", "elng"),
	"minf": set("vmhd", "smhd", "hmhd", "nmhd", "sthd", "gmhd", "hdlr", "dinf", "stbl"),
	"stbl": set("stsd", "stts", "ctts", "cslg", "stss", "stps", "stsh", "sdtp", "stsc", "stsz", "stz2",
		"stco", "co64", "padb", "subs", "sbgp", "sgpd", "saiz", "saio", "stdp"),
	"dinf": set("dref"),
	"edts": set("elst"),
	"mvex": set("mehd", "trex", "leva", "trep"),
	"moof": set("mfhd", "traf", "pssh"),
	"traf": set("tfhd", "tfdt", "trun", "sbgp", "sgpd", "subs", "saiz", "saio", "senc"),
}

func set(types ...string) map[string]bool {
	s := make(map[string]bool, len(types))
	for _, t := range types {
		s[t] = true
	}
	return s
}

// boxCleaner cleans, in place, boxes held in memory: a movie box or a
// movie fragment.
type boxCleaner struct {
	track         *track // the track being walked, if any
	width, height int    // of the first video track
	metaTracks    int    // tracks of timed metadata or timecode
	spans         []span // their samples, to zero in the media data
}

// track is what the cleaner gathers while it walks one trak.
type track struct {
	handler       string
	width, height int
	tables        map[string][]byte // payloads of stsd and the sample tables
}

// walk cleans the boxes that make up b, the payload of a parent box. It
// descends only into the containers that children lists, none of which holds
// itself at any depth, so a movie box nests at most six deep however its
// bytes nest: anything deeper sits in a box that is kept whole or blanked.
func (c *boxCleaner) walk(b []byte, parent string) error {
	for p := 0; p < len(b); {
		rest := b[p:]
		if len(rest) < 8 || binary.BigEndian.Uint32(rest) == 0 {
			// QuickTime ends some lists with a zero word: zeros hide nothing.
			if allZero(rest) {
				return nil
			}
			return fmt.Errorf("%d stray bytes at the end of %q", len(rest), parent)
		}
		bh, err := parseHeader(rest, int64(len(rest)))
		if err != nil {
			return fmt.Errorf("in %q: %w", parent, err)
		}
		if err := c.box(rest[:bh.size], bh, parent); err != nil {
			return err
		}
		p += int(bh.size)
	}
	return nil
}

// box cleans one box b, a child of parent.
func (c *boxCleaner) box(b []byte, bh boxHeader, parent string) error {
	payload := b[bh.hdr:]
	switch {
	case bh.typ == "free" || bh.typ == "skip" || bh.typ == "wide":
		clear(payload) // an editor may have left old metadata in the padding
		return nil
	case bh.typ == "cmov":
		return fault.New(fault.Unsupported, "compressed QuickTime movie headers cannot be cleaned: re-export the video as MP4")
	case !children[parent][bh.typ]:
		copy(b[4:8], "free")
		clear(payload)
		return nil
	}
	switch bh.typ {
	case "mvhd", "mdhd":
		return zeroTimes(bh.typ, payload)
	case "tkhd":
		return c.tkhd(payload)
	case "hdlr":
		return c.hdlr(payload, parent)
	case "dref":
		return selfContained(payload)
	case "trak":
		return c.trak(payload)
	case "stsd", "stco", "co64", "stsc", "stsz", "stz2":
		if c.track == nil {
			return nil
		}
		if c.track.tables[bh.typ] != nil {
			return fmt.Errorf("a track with two %q boxes", bh.typ)
		}
		c.track.tables[bh.typ] = payload
		return nil
	}
	if _, ok := children[bh.typ]; ok {
		return c.walk(payload, bh.typ)
	}
	return nil
}

// zeroTimes zeroes the creation and modification times that open mvhd,
// tkhd and mdhd: 32-bit in version 0, 64-bit in version 1.
func zeroTimes(typ string, p []byte) error {
	if len(p) < 4 {
		return fmt.Errorf("%q box is too short", typ)
	}
	n := 0
	switch p[0] {
	case 0:
		n = 4 + 8
	case 1:
		n = 4 + 16
	default:
		return fmt.Errorf("%q box of unknown version %d", typ, p[0])
	}
	if len(p) < n {
		return fmt.Errorf("%q box is too short", typ)
	}
	clear(p[4:n])
	return nil
}

// tkhd zeroes a track header's times and reads its display size.
func (c *boxCleaner) tkhd(p []byte) error {
	if err := zeroTimes("tkhd", p); err != nil {
		return err
	}
	n := 84 // the payload of a version 0 tkhd; width and height are its last 8 bytes
	if p[0] == 1 {
		n = 96
	}
	if len(p) < n {
		return fmt.Errorf("%q box is too short", "tkhd")
	}
	if c.track != nil {
		c.track.width = int(binary.BigEndian.Uint32(p[n-8:]) >> 16) // 16.16 fixed point
		c.track.height = int(binary.BigEndian.Uint32(p[n-4:]) >> 16)
	}
	return nil
}

// hdlr reads a media handler's type and blanks its name and reserved
// fields, which name the software or camera that wrote the track
// ("GoPro AVC", "Core Media Video").
func (c *boxCleaner) hdlr(p []byte, parent string) error {
	if len(p) < 12 {
		return fmt.Errorf("%q box is too short", "hdlr")
	}
	if parent == "mdia" && c.track != nil {
		c.track.handler = string(p[8:12])
	}
	clear(p[12:])
	return nil
}

// selfContained refuses a data reference to media outside the file: such
// a reference is a path or URL on the recording machine, and the movie
// could not play from storage anyway.
func selfContained(p []byte) error {
	if len(p) < 8 {
		return fmt.Errorf("%q box is too short", "dref")
	}
	return eachEntry(p[8:], "dref", func(e []byte, _ boxHeader) error {
		// Flag 1 says "this file"; some muxers leave it clear but name no
		// other place, which says the same.
		if len(e) < 4 || e[3]&1 == 0 && !allZero(e[4:]) {
			return fault.New(fault.Unsupported, "the video refers to media outside the file: export it as one self-contained file")
		}
		return nil
	})
}

// trak walks one track, then blanks what its sample entries say about
// the encoder and, for a track of timed metadata or timecode, collects
// its samples.
func (c *boxCleaner) trak(p []byte) error {
	t := &track{tables: map[string][]byte{}}
	c.track = t
	err := c.walk(p, "trak")
	c.track = nil
	if err != nil {
		return err
	}
	switch t.handler {
	case "":
		// Every track must say what it holds (ISO 14496-12, 8.4.3): without
		// it nothing tells where its encoder's name or its samples are.
		return fmt.Errorf("a track without a media handler")
	case "vide":
		if c.width == 0 && c.height == 0 {
			c.width, c.height = t.width, t.height
		}
		return blankEncoder(t.tables["stsd"], true)
	case "soun":
		return blankEncoder(t.tables["stsd"], false)
	case "meta", "camm", "tmcd":
		// Timed metadata (GoPro GPMF, Apple mebx, DJI, camera motion) holds
		// GPS fixes among other readings; a timecode track holds the time of
		// day the recording started, the camera's clock like mvhd's times.
		c.metaTracks++
		spans, err := t.samples(maxMetaSpans - len(c.spans))
		if err != nil {
			return err
		}
		c.spans = append(c.spans, spans...)
	}
	return nil
}

// blankEncoder zeroes, in each sample entry of an stsd payload, the vendor
// code and, for video, the compressor name ("GoPro AVC encoder").
func blankEncoder(stsd []byte, video bool) error {
	if stsd == nil {
		return nil
	}
	if len(stsd) < 8 {
		return fmt.Errorf("%q box is too short", "stsd")
	}
	return eachEntry(stsd[8:], "stsd", func(e []byte, _ boxHeader) error {
		if len(e) >= 16 {
			clear(e[12:16]) // after reserved, data reference index, version, revision
		}
		if video && len(e) >= 74 {
			clear(e[42:74]) // after quality, size, resolution, data size, frame count
		}
		return nil
	})
}

// eachEntry calls f with the payload of each box in b, the entries of a
// full box that lists boxes (stsd, dref).
func eachEntry(b []byte, parent string, f func([]byte, boxHeader) error) error {
	for p := 0; p < len(b); {
		rest := b[p:]
		if len(rest) < 8 || binary.BigEndian.Uint32(rest) == 0 {
			if allZero(rest) {
				return nil
			}
			return fmt.Errorf("%d stray bytes at the end of %q", len(rest), parent)
		}
		bh, err := parseHeader(rest, int64(len(rest)))
		if err != nil {
			return fmt.Errorf("in %q: %w", parent, err)
		}
		if err := f(rest[bh.hdr:bh.size], bh); err != nil {
			return err
		}
		p += int(bh.size)
	}
	return nil
}

func allZero(b []byte) bool {
	for _, v := range b {
		if v != 0 {
			return false
		}
	}
	return true
}
