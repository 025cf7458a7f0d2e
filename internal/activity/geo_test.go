package activity

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"sort"
	"strings"
	"testing"

	"steward/internal/policy"
)

// A tiny MaxMind DB written by hand (the format is documented at
// maxmind.github.io/MaxMind-DB): an IPv4 search tree with 24-bit records,
// the data section, and the metadata. github.com/maxmind/mmdbwriter would
// do this but is not a dependency of the module.

type mmdbWriter struct{ data bytes.Buffer }

func (w *mmdbWriter) control(typ byte, size int) {
	var b []byte
	ctl := byte(0)
	if typ <= 7 {
		ctl = typ << 5
	}
	switch {
	case size < 29:
		ctl |= byte(size)
		b = append(b, ctl)
	case size < 29+256:
		ctl |= 29
		b = append(b, ctl, byte(size-29))
	default:
		panic("test MMDB: value too large")
	}
	if typ > 7 {
		b = append(b[:1], append([]byte{typ - 7}, b[1:]...)...)
	}
	w.data.Write(b)
}

func (w *mmdbWriter) value(v any) {
	switch v := v.(type) {
	case string:
		w.control(2, len(v))
		w.data.WriteString(v)
	case uint16:
		w.uint(5, uint64(v))
	case uint32:
		w.uint(6, uint64(v))
	case uint64:
		w.uint(9, v)
	case []any:
		w.control(11, len(v))
		for _, x := range v {
			w.value(x)
		}
	case map[string]any:
		w.control(7, len(v))
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			w.value(k)
			w.value(v[k])
		}
	default:
		panic("test MMDB: unsupported type")
	}
}

func (w *mmdbWriter) uint(typ byte, v uint64) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	i := 0
	for i < 8 && b[i] == 0 {
		i++
	}
	w.control(typ, 8-i)
	w.data.Write(b[i:])
}

type trieNode struct {
	child [2]*trieNode
	data  [2]int // data offset + 1 for a record that ends a network
	id    int
}

// buildMMDB returns a GeoIP2-City-like database holding records for the
// given IPv4 networks.
func buildMMDB(t *testing.T, nets map[string]map[string]any) []byte {
	t.Helper()
	w := &mmdbWriter{}
	root := &trieNode{}
	for cidr, rec := range nets {
		p := netip.MustParsePrefix(cidr)
		off := w.data.Len()
		w.value(rec)
		a := p.Addr().As4()
		ip := binary.BigEndian.Uint32(a[:])
		n := root
		for bit := 0; bit < p.Bits(); bit++ {
			b := (ip >> (31 - bit)) & 1
			if bit == p.Bits()-1 {
				n.data[b] = off + 1
				break
			}
			if n.child[b] == nil {
				n.child[b] = &trieNode{}
			}
			n = n.child[b]
		}
	}
	var order []*trieNode
	queue := []*trieNode{root}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		n.id = len(order)
		order = append(order, n)
		for _, c := range n.child {
			if c != nil {
				queue = append(queue, c)
			}
		}
	}
	count := len(order)
	var out bytes.Buffer
	put24 := func(v int) { out.Write([]byte{byte(v >> 16), byte(v >> 8), byte(v)}) }
	for _, n := range order {
		for b := 0; b < 2; b++ {
			switch {
			case n.child[b] != nil:
				put24(n.child[b].id)
			case n.data[b] != 0:
				put24(count + 16 + n.data[b] - 1)
			default:
				put24(count) // no data
			}
		}
	}
	out.Write(make([]byte, 16))
	out.Write(w.data.Bytes())
	meta := &mmdbWriter{}
	meta.value(map[string]any{
		"node_count": uint32(count), "record_size": uint16(24), "ip_version": uint16(4),
		"database_type": "GeoIP2-City", "languages": []any{"en"},
		"binary_format_major_version": uint16(2), "binary_format_minor_version": uint16(0),
		"build_epoch": uint64(1767225600), "description": map[string]any{"en": "Steward test database"},
	})
	out.WriteString("\xab\xcd\xefMaxMind.com")
	out.Write(meta.data.Bytes())
	return out.Bytes()
}

func cityRec(country, region, city string) map[string]any {
	return map[string]any{
		"country":      map[string]any{"iso_code": country},
		"subdivisions": []any{map[string]any{"names": map[string]any{"en": region}}},
		"city":         map[string]any{"names": map[string]any{"en": city}},
	}
}

func TestGeoLocate(t *testing.T) {
	db := buildMMDB(t, map[string]map[string]any{
		"81.2.69.0/24":  cityRec("GB", "England", "London"),
		"89.160.0.0/16": cityRec("SE", "Östergötland County", "Linköping"),
	})
	g, err := OpenGeoBytes(db)
	if err != nil {
		t.Fatalf("OpenGeoBytes: %v", err)
	}
	defer g.Close()
	if !g.HasCities() || g.BuildTime().Year() != 2026 {
		t.Errorf("HasCities = %v, build time %v", g.HasCities(), g.BuildTime())
	}
	cases := []struct {
		ip   string
		gran policy.Granularity
		want Location
	}{
		{"81.2.69.142", policy.GranularityCity, Location{"GB", "England", "London"}},
		{"81.2.69.142", policy.GranularityRegion, Location{"GB", "England", ""}},
		{"81.2.69.142", policy.GranularityCountry, Location{"GB", "", ""}},
		{"81.2.69.142", policy.GranularityNone, Location{}},
		{"81.2.69.142", "cities", Location{}}, // an unknown allowance allows nothing
		{"::ffff:89.160.20.112", policy.GranularityCity, Location{"SE", "Östergötland County", "Linköping"}},
		{"8.8.8.8", policy.GranularityCity, Location{"US", "", ""}}, // not in the MMDB: the embedded country table answers
		{"10.0.0.1", policy.GranularityCity, Location{}},
		{"127.0.0.1", policy.GranularityCountry, Location{}},
		{"192.168.1.1", policy.GranularityCountry, Location{}},
	}
	for _, c := range cases {
		if got := g.Locate(netip.MustParseAddr(c.ip), c.gran); got != c.want {
			t.Errorf("Locate(%s, %s) = %+v, want %+v", c.ip, c.gran, got, c.want)
		}
	}
	// Without an MMDB only the country is known, whatever is allowed.
	if got := NewGeo().Locate(netip.MustParseAddr("81.2.69.142"), policy.GranularityCity); got != (Location{Country: "GB"}) {
		t.Errorf("embedded table: %+v, want country GB only", got)
	}
	if _, err := OpenGeoBytes([]byte("not a database")); err == nil {
		t.Error("OpenGeoBytes accepted garbage")
	}
}

// TestConfigGranularity: location fields finer than the granularity are
// dropped, and an unknown granularity is refused rather than read as any
// level.
func TestConfigGranularity(t *testing.T) {
	all := map[string]bool{FieldCountry: true, FieldRegion: true, FieldCity: true}
	for gran, want := range map[policy.Granularity]string{
		"":                        "country",
		policy.GranularityNone:    "",
		policy.GranularityCountry: "country",
		policy.GranularityRegion:  "country region",
		policy.GranularityCity:    "country region city",
	} {
		c, err := Config{Granularity: gran, Fields: all}.validate()
		if err != nil {
			t.Fatalf("%q: %v", gran, err)
		}
		var got []string
		for _, f := range []string{FieldCountry, FieldRegion, FieldCity} {
			if c.Fields[f] {
				got = append(got, f)
			}
		}
		if g := strings.Join(got, " "); g != want {
			t.Errorf("granularity %q keeps %q, want %q", gran, g, want)
		}
	}
	if _, err := (Config{Granularity: "cities", Fields: all}).validate(); err == nil {
		t.Error("an unknown granularity was accepted")
	}
}
