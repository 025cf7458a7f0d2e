package media

import (
	"slices"
	"strings"
	"testing"
)

// payload strips a box's header: the sample tables are kept as payloads.
func payload(b []byte) []byte { return b[8:] }

func TestTrackSamples(t *testing.T) {
	stco := payload(fullBox("stco", 0, 0, u32(3), u32(100), u32(200), u32(300)))
	co64 := payload(fullBox("co64", 0, 0, u32(3), u64(100), u64(200), u64(300)))
	// Chunks 1 and 2 hold two samples each, chunk 3 one.
	stsc := payload(fullBox("stsc", 0, 0, u32(2), u32(1), u32(2), u32(1), u32(3), u32(1), u32(1)))
	stsz := payload(fullBox("stsz", 0, 0, u32(0), u32(5), u32(1), u32(2), u32(3), u32(4), u32(5)))
	fixed := payload(fullBox("stsz", 0, 0, u32(10), u32(5)))
	stz2 := func(bits byte, sizes []byte) []byte {
		return payload(fullBox("stz2", 0, 0, []byte{0, 0, 0, bits}, u32(5), sizes))
	}
	sized := []span{{100, 103}, {200, 207}, {300, 305}}
	tests := []struct {
		name   string
		tables map[string][]byte
		want   []span
		err    string
	}{
		{"stsz", map[string][]byte{"stco": stco, "stsc": stsc, "stsz": stsz}, sized, ""},
		{"co64", map[string][]byte{"co64": co64, "stsc": stsc, "stsz": stsz}, sized, ""},
		{"one size for all", map[string][]byte{"stco": stco, "stsc": stsc, "stsz": fixed}, []span{{100, 120}, {200, 220}, {300, 310}}, ""},
		{"stz2, 4 bits", map[string][]byte{"stco": stco, "stsc": stsc, "stz2": stz2(4, []byte{0x12, 0x34, 0x50})}, sized, ""},
		{"stz2, 8 bits", map[string][]byte{"stco": stco, "stsc": stsc, "stz2": stz2(8, []byte{1, 2, 3, 4, 5})}, sized, ""},
		{"stz2, 16 bits", map[string][]byte{"stco": stco, "stsc": stsc, "stz2": stz2(16, cat(u16(1), u16(2), u16(3), u16(4), u16(5)))}, sized, ""},
		{"no samples", map[string][]byte{}, nil, ""},
		{"stz2, 7 bits", map[string][]byte{"stco": stco, "stsc": stsc, "stz2": stz2(7, zeroBytes(5))}, nil, "7-bit sizes"},
		{"stz2 too short", map[string][]byte{"stco": stco, "stsc": stsc, "stz2": stz2(16, zeroBytes(4))}, nil, "no room"},
		{"stsz too short", map[string][]byte{"stco": stco, "stsc": stsc, "stsz": stsz[:16]}, nil, "no room"},
		{"stco too short", map[string][]byte{"stco": stco[:12], "stsc": stsc, "stsz": stsz}, nil, "no room"},
		{"both stco and co64", map[string][]byte{"stco": stco, "co64": co64, "stsc": stsc, "stsz": stsz}, nil, "both stco and co64"},
		{"both stsz and stz2", map[string][]byte{"stco": stco, "stsc": stsc, "stsz": stsz, "stz2": stz2(8, []byte{1, 2, 3, 4, 5})}, nil, "both stsz and stz2"},
		{"chunks without stsc", map[string][]byte{"stco": stco, "stsz": stsz}, nil, "without stsc"},
		{"samples without chunks", map[string][]byte{"stsc": stsc, "stsz": stsz}, nil, "no chunk offsets"},
		{"stsz cut short", map[string][]byte{"stco": stco, "stsc": stsc, "stsz": fixed[:4]}, nil, "too short"},
		{"stsc beyond the samples", map[string][]byte{"stco": stco, "stsc": payload(fullBox("stsc", 0, 0, u32(1), u32(1), u32(3), u32(1))), "stsz": stsz}, nil, "more samples than stsz"},
		{"stsc out of order", map[string][]byte{"stco": stco, "stsc": payload(fullBox("stsc", 0, 0, u32(2), u32(2), u32(1), u32(1), u32(1), u32(1), u32(1))), "stsz": stsz}, nil, "out of order"},
		{"stsc not from chunk 1", map[string][]byte{"stco": stco, "stsc": payload(fullBox("stsc", 0, 0, u32(1), u32(2), u32(1), u32(1))), "stsz": stsz}, nil, "does not cover chunk 1"},
		{"empty stsc", map[string][]byte{"stco": stco, "stsc": payload(fullBox("stsc", 0, 0, u32(0))), "stsz": stsz}, nil, "empty stsc"},
		{"chunk offset past 2^62", map[string][]byte{"co64": payload(fullBox("co64", 0, 0, u32(1), u64(1<<63))), "stsc": stsc, "stsz": stsz}, nil, "chunk offset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := (&track{tables: tt.tables}).samples(maxMetaSpans)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("samples = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}
