package activity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"steward/internal/fault"
	"steward/internal/store/storetest"
)

// Bad input gets a clear coded error (never Internal), naming the field
// where there is one, and nothing is stored.
func TestBadInput(t *testing.T) {
	db := storetest.SQLite(t, mods())
	f := newFixture(t, db, testConfig(allFields(), time.UTC), day1)
	many := map[string]int{}
	for i := 0; i < 10000; i++ {
		many[fmt.Sprintf("p%d", i)] = i
	}
	manyJSON, _ := json.Marshal(map[string]any{"site": "demo", "type": "event", "url": "https://example.org/", "name": "x", "props": many})
	twenty := map[string]int{}
	for i := 0; i < 21; i++ {
		twenty[fmt.Sprintf("p%d", i)] = i
	}
	twentyJSON, _ := json.Marshal(map[string]any{"site": "demo", "type": "event", "url": "https://example.org/", "name": "x", "props": twenty})
	future := day1.Add(time.Hour).UnixMilli()
	past := day1.Add(-time.Hour).UnixMilli()

	cases := []struct {
		name  string
		body  string
		code  fault.Code
		field string
	}{
		{"empty", ``, fault.Invalid, ""},
		{"not JSON", `site=demo`, fault.Invalid, ""},
		{"array", `[1,2]`, fault.Invalid, ""},
		{"trailing data", `{"site":"demo","type":"pageview","url":"https://example.org/"} {}`, fault.Invalid, ""},
		{"truncated", `{"site":"demo","type":"pageview"`, fault.Invalid, ""},
		{"invalid UTF-8", "{\"site\":\"demo\",\"type\":\"pageview\",\"url\":\"https://example.org/\xff\"}", fault.Invalid, ""},
		{"oversized", `{"site":"demo","type":"pageview","url":"https://example.org/` + strings.Repeat("a", MaxBody) + `"}`, fault.TooLarge, ""},
		{"deeply nested", `{"site":"demo","type":"event","url":"https://example.org/","name":"x","props":{"a":` + strings.Repeat("[", 2000) + strings.Repeat("]", 2000) + `}}`, fault.Invalid, "props"},
		{"nested prop", `{"site":"demo","type":"event","url":"https://example.org/","name":"x","props":{"a":{"b":1}}}`, fault.Invalid, "props"},
		{"10,000 props", string(manyJSON), fault.TooLarge, ""},
		{"21 props", string(twentyJSON), fault.Invalid, "props"},
		{"unknown field", `{"site":"demo","type":"pageview","url":"https://example.org/","ip":"1.2.3.4"}`, fault.Invalid, "ip"},
		{"wrong type", `{"site":"demo","type":"pageview","url":42}`, fault.Invalid, "url"},
		{"no site", `{"type":"pageview","url":"https://example.org/"}`, fault.Invalid, "site"},
		{"forged site", `{"site":"someone-else","type":"pageview","url":"https://example.org/"}`, fault.Invalid, "site"},
		{"unknown type", `{"site":"demo","type":"purchase","url":"https://example.org/"}`, fault.Invalid, "type"},
		{"no url", `{"site":"demo","type":"pageview"}`, fault.Invalid, "url"},
		{"url not a URL", `{"site":"demo","type":"pageview","url":"not a url"}`, fault.Invalid, "url"},
		{"relative url", `{"site":"demo","type":"pageview","url":"/about"}`, fault.Invalid, "url"},
		{"javascript url", `{"site":"demo","type":"pageview","url":"javascript:alert(1)"}`, fault.Invalid, "url"},
		{"control in url", `{"site":"demo","type":"pageview","url":"https://example.org/a\u0000b"}`, fault.Invalid, "url"},
		{"url too long", `{"site":"demo","type":"pageview","url":"https://example.org/` + strings.Repeat("a", 3000) + `"}`, fault.Invalid, "url"},
		{"other origin", `{"site":"demo","type":"pageview","url":"https://evil.example/"}`, fault.Invalid, "url"},
		{"referrer not a URL", `{"site":"demo","type":"pageview","url":"https://example.org/","referrer":"::::"}`, fault.Invalid, "referrer"},
		{"bad screen", `{"site":"demo","type":"pageview","url":"https://example.org/","screen":"1920x1080"}`, fault.Invalid, "screen"},
		{"future timestamp", fmt.Sprintf(`{"site":"demo","type":"pageview","url":"https://example.org/","ts":%d}`, future), fault.Invalid, "ts"},
		{"old timestamp", fmt.Sprintf(`{"site":"demo","type":"pageview","url":"https://example.org/","ts":%d}`, past), fault.Invalid, "ts"},
		{"negative duration", `{"site":"demo","type":"engagement","url":"https://example.org/","duration_ms":-5}`, fault.Invalid, "duration_ms"},
		{"huge duration", `{"site":"demo","type":"engagement","url":"https://example.org/","duration_ms":99999999999}`, fault.Invalid, "duration_ms"},
		{"duration on pageview", `{"site":"demo","type":"pageview","url":"https://example.org/","duration_ms":5}`, fault.Invalid, "duration_ms"},
		{"empty search", `{"site":"demo","type":"search","url":"https://example.org/","search":"   "}`, fault.Invalid, "search"},
		{"event without name", `{"site":"demo","type":"event","url":"https://example.org/"}`, fault.Invalid, "name"},
		{"event name too long", `{"site":"demo","type":"event","url":"https://example.org/","name":"` + strings.Repeat("n", 65) + `"}`, fault.Invalid, "name"},
		{"outbound without target", `{"site":"demo","type":"outbound","url":"https://example.org/"}`, fault.Invalid, "target"},
		{"outbound to mailto", `{"site":"demo","type":"outbound","url":"https://example.org/","target":"mailto:a@b.c"}`, fault.Invalid, "target"},
		{"prop value too long", `{"site":"demo","type":"event","url":"https://example.org/","name":"x","props":{"a":"` + strings.Repeat("v", 201) + `"}}`, fault.Invalid, "props"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in, err := ParseInput([]byte(c.body))
			if err == nil {
				err = f.c.Collect(context.Background(), in, req("81.2.69.142", uaChrome))
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if got := fault.CodeOf(err); got != c.code {
				t.Errorf("code = %s (%v), want %s", got, err, c.code)
			}
			if c.field != "" && fault.FieldOf(err) != c.field {
				t.Errorf("field = %q (%v), want %q", fault.FieldOf(err), err, c.field)
			}
			if fault.MessageOf(err) == "internal error" {
				t.Errorf("message is not clear: %v", err)
			}
		})
	}
	if got := count(t, db, `SELECT COUNT(*) FROM activity_events`); got != 0 {
		t.Errorf("events stored from bad input: %d", got)
	}
}

func TestInputNormalisation(t *testing.T) {
	db := storetest.SQLite(t, mods())
	f := newFixture(t, db, testConfig(allFields(), time.UTC), day1)
	cases := []struct {
		name string
		in   Input
		want Event
	}{
		{"credentials and fragment dropped, query allow-listed", Input{Site: "demo", Type: TypePageview, URL: "https://user:pw@example.org/a/b?utm_source=x&token=secret&q=Hi#frag"},
			Event{Page: "/a/b", Query: "utm_source=x", Search: "hi"}},
		{"same-site referrer dropped", Input{Site: "demo", Type: TypePageview, URL: "https://example.org/b", Referrer: "https://example.org/a"},
			Event{Page: "/b"}},
		{"referrer keeps scheme host path", Input{Site: "demo", Type: TypePageview, URL: "https://example.org/", Referrer: "https://News.Example.com/story/1?id=2#c"},
			Event{Page: "/", Referrer: "https://news.example.com/story/1"}},
		{"email in path scrubbed", Input{Site: "demo", Type: TypePageview, URL: "https://example.org/u/jane@example.com"},
			Event{Page: "/u/:email"}},
		{"search event normalised", Input{Site: "demo", Type: TypeSearch, URL: "https://example.org/", Search: "  Call ME +44 20 7946 0958  "},
			Event{Page: "/", Search: "call me :phone"}},
		{"outbound keeps no query", Input{Site: "demo", Type: TypeOutbound, URL: "https://example.org/", Target: "https://other.example/x?ref=1"},
			Event{Page: "/", Link: "https://other.example/x"}},
		{"download", Input{Site: "demo", Type: TypeDownload, URL: "https://example.org/", Target: "https://example.org/files/report.pdf"},
			Event{Page: "/", Asset: "https://example.org/files/report.pdf"}},
		{"event props canonical", Input{Site: "demo", Type: TypeEvent, URL: "https://example.org/", Name: "Signup", Props: map[string]json.RawMessage{"b": []byte(`true`), "a": []byte(`"x@y.org"`), "n": []byte(`3`), "z": []byte(`null`)}},
			Event{Page: "/", Name: "Signup", Props: `{"a":":email","b":true,"n":3}`}},
		{"engagement", Input{Site: "demo", Type: TypeEngagement, URL: "https://example.org/x", DurationMS: ptr(int64(1500))},
			Event{Page: "/x", DurationMS: 1500}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := f.c.normalize(c.in, f.c.cfg.Sites[0], day1)
			if err != nil {
				t.Fatal(err)
			}
			c.want.Site, c.want.At, c.want.Type = "demo", day1, c.in.Type
			got.Campaign = ""
			if got != c.want {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// FuzzCollect feeds arbitrary bodies through decoding and validation: it
// must never panic, and every refusal must be a client error.
func FuzzCollect(f *testing.F) {
	for _, s := range []string{
		`{"site":"demo","type":"pageview","url":"https://example.org/a?q=x&utm_campaign=y","referrer":"https://r.example/p","screen":"laptop"}`,
		`{"site":"demo","type":"event","url":"https://example.org/","name":"n","props":{"a":1,"b":"c","d":true}}`,
		`{"site":"demo","type":"engagement","url":"https://example.org/","duration_ms":10}`,
		`{"site":"demo","type":"outbound","url":"https://example.org/","target":"https://x.example/"}`,
		`{"site":"demo","type":"search","url":"https://example.org/","search":"a@b.co 0301234567"}`,
		`{"site":"demo","type":"pageview","url":"https://example.org/%ff%fe"}`,
		`{"props":{"a":[[[[]]]]}}`, `[]`, `null`, `"x"`, `{`, "\xff",
	} {
		f.Add([]byte(s))
	}
	db := storetest.SQLite(f, mods())
	fx := newFixture(f, db, testConfig(allFields(), time.UTC), day1)
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := ParseInput(body)
		if err == nil {
			_, err = fx.c.Prepare(context.Background(), in, req("81.2.69.142", uaChrome))
		}
		if err != nil && !errors.Is(err, ErrNotRecorded) {
			if c := fault.CodeOf(err); c == fault.Internal {
				t.Errorf("body %q: internal error %v", body, err)
			}
		}
	})
}
