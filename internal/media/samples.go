package media

import (
	"encoding/binary"
	"fmt"
)

// samples returns where the track's samples lie in the file, one span per
// chunk, from its chunk offsets (stco or co64), samples per chunk (stsc)
// and sample sizes (stsz or stz2). Tables that disagree are an error: the
// samples could not be found with certainty.
func (t *track) samples(limit int) ([]span, error) {
	offsets, err := chunkOffsets(t.tables["stco"], t.tables["co64"])
	if err != nil {
		return nil, err
	}
	sizes, err := sampleSizes(t.tables["stsz"], t.tables["stz2"])
	if err != nil {
		return nil, err
	}
	if len(offsets) == 0 {
		if sizes.count > 0 {
			return nil, fmt.Errorf("a metadata track with %d samples and no chunk offsets", sizes.count)
		}
		return nil, nil
	}
	runs, err := chunkRuns(t.tables["stsc"])
	if err != nil {
		return nil, err
	}
	var spans []span
	next, run := int64(0), 0 // the next sample, the stsc entry in force
	for chunk := range int64(len(offsets)) {
		for run+1 < len(runs) && runs[run+1].first <= chunk+1 {
			run++
		}
		if runs[run].first > chunk+1 {
			return nil, fmt.Errorf("stsc does not cover chunk %d", chunk+1)
		}
		per := runs[run].perChunk
		if per > sizes.count-next {
			return nil, fmt.Errorf("stsc lists more samples than stsz (%d)", sizes.count)
		}
		var n int64
		if sizes.fixed != 0 {
			n = per * sizes.fixed // both below 2^32
		} else {
			for s := next; s < next+per; s++ {
				n += sizes.at(s)
			}
		}
		next += per
		if n == 0 {
			continue
		}
		if len(spans) == limit {
			return nil, fmt.Errorf("more than %d runs of metadata samples", maxMetaSpans)
		}
		spans = append(spans, span{offsets[chunk], offsets[chunk] + n})
	}
	return spans, nil
}

// table returns the entries of a full box that holds a count at offset
// head-4 and then count entries of width bytes.
func table(p []byte, name string, head, width int) ([]byte, int64, error) {
	if len(p) < head {
		return nil, 0, fmt.Errorf("%q box is too short", name)
	}
	n := int64(binary.BigEndian.Uint32(p[head-4:]))
	if n*int64(width) > int64(len(p)-head) {
		return nil, 0, fmt.Errorf("%q box lists %d entries it has no room for", name, n)
	}
	return p[head : head+int(n)*width], n, nil
}

// chunkOffsets reads the absolute file offsets of a track's chunks.
func chunkOffsets(stco, co64 []byte) ([]int64, error) {
	if stco != nil && co64 != nil {
		return nil, fmt.Errorf("a track with both stco and co64")
	}
	wide := co64 != nil
	p, name, width := stco, "stco", 4
	if wide {
		p, name, width = co64, "co64", 8
	}
	if p == nil {
		return nil, nil
	}
	e, n, err := table(p, name, 8, width)
	if err != nil {
		return nil, err
	}
	offsets := make([]int64, n)
	for i := range offsets {
		if wide {
			off := binary.BigEndian.Uint64(e[8*i:])
			if off > 1<<62 { // no file is that large, and adding a size must not overflow
				return nil, fmt.Errorf("a chunk offset of %d", off)
			}
			offsets[i] = int64(off)
		} else {
			offsets[i] = int64(binary.BigEndian.Uint32(e[4*i:]))
		}
	}
	return offsets, nil
}

// chunkRun is an stsc entry: from chunk first (counted from 1) on, each
// chunk holds perChunk samples.
type chunkRun struct{ first, perChunk int64 }

func chunkRuns(stsc []byte) ([]chunkRun, error) {
	if stsc == nil {
		return nil, fmt.Errorf("a metadata track without stsc")
	}
	e, n, err := table(stsc, "stsc", 8, 12)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("an empty stsc for a track with chunks")
	}
	runs := make([]chunkRun, n)
	for i := range runs {
		runs[i] = chunkRun{
			first:    int64(binary.BigEndian.Uint32(e[12*i:])),
			perChunk: int64(binary.BigEndian.Uint32(e[12*i+4:])),
		}
		if i > 0 && runs[i].first <= runs[i-1].first {
			return nil, fmt.Errorf("stsc entries out of order")
		}
	}
	return runs, nil
}

// sizes gives the size of each sample of a track.
type sizes struct {
	count int64
	fixed int64  // every sample's size, when not 0
	field int    // bits per entry in packed: 4, 8, 16 or 32
	table []byte // packed sizes, when fixed is 0
}

func (s sizes) at(i int64) int64 {
	if s.fixed != 0 {
		return s.fixed
	}
	switch s.field {
	case 4:
		b := s.table[i/2]
		if i%2 == 0 {
			return int64(b >> 4)
		}
		return int64(b & 0x0F)
	case 8:
		return int64(s.table[i])
	case 16:
		return int64(binary.BigEndian.Uint16(s.table[2*i:]))
	}
	return int64(binary.BigEndian.Uint32(s.table[4*i:]))
}

// sampleSizes reads stsz, or its compact form stz2.
func sampleSizes(stsz, stz2 []byte) (sizes, error) {
	switch {
	case stsz != nil && stz2 != nil:
		return sizes{}, fmt.Errorf("a track with both stsz and stz2")
	case stsz != nil:
		if len(stsz) < 12 {
			return sizes{}, fmt.Errorf("%q box is too short", "stsz")
		}
		s := sizes{fixed: int64(binary.BigEndian.Uint32(stsz[4:])), field: 32}
		s.count = int64(binary.BigEndian.Uint32(stsz[8:]))
		if s.fixed == 0 {
			var err error
			if s.table, s.count, err = table(stsz, "stsz", 12, 4); err != nil {
				return sizes{}, err
			}
		}
		return s, nil
	case stz2 != nil:
		if len(stz2) < 12 {
			return sizes{}, fmt.Errorf("%q box is too short", "stz2")
		}
		s := sizes{field: int(stz2[7]), count: int64(binary.BigEndian.Uint32(stz2[8:]))}
		if s.field != 4 && s.field != 8 && s.field != 16 {
			return sizes{}, fmt.Errorf("stz2 with %d-bit sizes", s.field)
		}
		if (s.count*int64(s.field)+7)/8 > int64(len(stz2)-12) {
			return sizes{}, fmt.Errorf("%q box lists %d entries it has no room for", "stz2", s.count)
		}
		s.table = stz2[12:]
		return s, nil
	}
	return sizes{}, nil
}
