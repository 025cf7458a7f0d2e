package activity

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
)

// slowParse is ParseInput without its fast path.
func slowParse(body []byte) (Input, error) {
	var in Input
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return in, err
	}
	if _, err := dec.Token(); err == nil {
		return in, fmt.Errorf("trailing data")
	}
	return in, nil
}

// TestParseInputFast checks that the one-pass decoder accepts only what
// encoding/json accepts, with the same result, and leaves the rest to it.
func TestParseInputFast(t *testing.T) {
	cases := []struct {
		body string
		fast bool // the fast path must take it
	}{
		{`{"site":"demo","type":"pageview","url":"https://a.example/p?x=1","referrer":"https://r.example/","screen":"phone"}`, true},
		{` { "site" : "demo" , "type":"engagement","url":"https://a.example/","duration_ms": 1234 } ` + "\n", true},
		{`{"site":"demo","type":"search","url":"u","search":"ünïcode ✓","ts":-0,"target":"","name":"n"}`, true},
		{`{}`, true},
		{"{\t}\r\n", true},
		{`{"site":"demo","ts":123456789012345678}`, true},
		{`{"site":"demo","ts":1234567890123456789}`, false},  // 19 digits: left to the decoder
		{`{"site":"demo","ts":99999999999999999999}`, false}, // overflows: an error
		{`{"site":"demo","duration_ms":1.5}`, false},
		{`{"site":"demo","duration_ms":1e3}`, false},
		{`{"site":"demo","duration_ms":01}`, false},
		{`{"site":"demo","duration_ms":-}`, false},
		{`{"site":"demo","duration_ms":null}`, false},
		{`{"site":"demo","duration_ms":"5"}`, false},
		{`{"site":null}`, false},
		{`{"site":5}`, false},
		{`{"Site":"demo"}`, false},
		{`{"SITE":"demo","site":"x"}`, false},
		{`{"site":"a","site":"b"}`, false},
		{`{"site":"a\"b"}`, false},
		{`{"site":"a\u0041"}`, false},
		{"{\"site\":\"a\tb\"}", false},
		{`{"site":"demo",}`, false},
		{`{"site":"demo"} x`, false},
		{`{"site":"demo"}{}`, false},
		{`{"site":"demo"`, false},
		{`{"site" "demo"}`, false},
		{`{"site":"demo" "type":"x"}`, false},
		{`{"unknown":"x"}`, false},
		{`{"props":{"a":1},"site":"demo"}`, false},
		{`[]`, false},
		{`"x"`, false},
		{`{"site":"demo"}` + "\v", false},
	}
	for _, c := range cases {
		got, ok := parseInputFast([]byte(c.body))
		if ok != c.fast {
			t.Errorf("fast path on %q = %v, want %v", c.body, ok, c.fast)
		}
		want, err := slowParse([]byte(c.body))
		if ok && (err != nil || !reflect.DeepEqual(got, want)) {
			t.Errorf("fast path on %q = %+v, encoding/json = %+v (%v)", c.body, got, want, err)
		}
	}
	// Random mutations of tracker events: whatever the fast path takes,
	// encoding/json takes too, with the same result.
	r := rand.New(rand.NewPCG(1, 2))
	base := []string{
		`{"site":"demo","type":"pageview","url":"https://load.example/a/1?utm_campaign=c1","referrer":"https://ref1.example/p","screen":"tablet"}`,
		`{"site":"demo","type":"engagement","url":"https://load.example/a/2","duration_ms":12345,"ts":1700000000000}`,
		`{"site":"demo","type":"event","url":"https://load.example/a/3","name":"figure-zoom","target":"t"}`,
	}
	alphabet := []byte(`{}[]",:\ 0123456789-.eE tnul` + "\t\n\r\x01abcsiteypdrum")
	taken := 0
	for n := 0; n < 50000; n++ {
		b := []byte(base[r.IntN(len(base))])
		for m := 1 + r.IntN(3); m > 0; m-- {
			p := r.IntN(len(b) + 1)
			switch r.IntN(3) {
			case 0: // insert
				b = append(b[:p], append([]byte{alphabet[r.IntN(len(alphabet))]}, b[p:]...)...)
			case 1: // delete
				if p < len(b) {
					b = append(b[:p], b[p+1:]...)
				}
			case 2: // replace
				if p < len(b) {
					b[p] = alphabet[r.IntN(len(alphabet))]
				}
			}
		}
		got, ok := parseInputFast(b)
		if !ok {
			continue
		}
		taken++
		want, err := slowParse(b)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("fast path on %q = %+v, encoding/json = %+v (%v)", b, got, want, err)
		}
	}
	if taken < 1000 {
		t.Errorf("the fast path took only %d mutated bodies; the comparison proves little", taken)
	}
}
