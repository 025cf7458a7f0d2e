package policy

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"steward/examples"
)

// example parses an embedded example policy.
func example(t testing.TB, name string) *Policy {
	t.Helper()
	data, err := examples.FS.ReadFile(name)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	p, err := Parse(name, data)
	if err != nil {
		t.Fatalf("Parse(%s):\n%v", name, err)
	}
	return p
}

// mustParse parses policy text that must be valid.
func mustParse(t testing.TB, name, text string) *Policy {
	t.Helper()
	p, err := Parse(name, []byte(text))
	if err != nil {
		t.Fatalf("Parse(%s):\n%v", name, err)
	}
	return p
}

// exampleText returns an embedded example as text, for edits.
func exampleText(t testing.TB, name string) string {
	t.Helper()
	data, err := examples.FS.ReadFile(name)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return string(data)
}

// edit replaces old by new in text, failing if old is absent.
func edit(t testing.TB, text, old, new string) string {
	t.Helper()
	if !strings.Contains(text, old) {
		t.Fatalf("edit: %q not found", old)
	}
	return strings.Replace(text, old, new, 1)
}

func TestExamplesParseWithoutProblems(t *testing.T) {
	for _, name := range []string{"jmir.yaml", "mixi.yaml"} {
		t.Run(name, func(t *testing.T) {
			p := example(t, name)
			if probs := p.Check(); len(probs) != 0 {
				t.Errorf("Check() = %v, want no problems", probs)
			}
			if len(p.Hash()) != 64 {
				t.Errorf("Hash() = %q, want 64 hex digits", p.Hash())
			}
			if p.EffectiveDate().IsZero() {
				t.Error("EffectiveDate() is zero")
			}
			if p.Site("demo") == nil {
				t.Error("no site demo")
			}
			origins := p.Site("demo").Origins
			for _, o := range []string{"http://127.0.0.1:8080", "http://localhost:8080"} {
				if !slices.Contains(origins, o) {
					t.Errorf("site demo origins %v lack %s", origins, o)
				}
			}
			if p.Cookie("steward_session") == nil {
				t.Error("steward_session is not declared")
			}
			for _, c := range p.Cookies {
				if c.Kind != CookieFunctional || c.SetBy != "steward" {
					t.Errorf("cookie %s is %s set by %s, want only functional cookies set by steward", c.Name, c.Kind, c.SetBy)
				}
			}
		})
	}
}

func TestAccessors(t *testing.T) {
	j := example(t, "jmir.yaml")
	m := example(t, "mixi.yaml")
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"jmir billing_address category", j.CategoryOfField("billing_address"), "payment"},
		{"jmir phone category", j.CategoryOfField("phone"), "identity"},
		{"jmir undeclared field", j.CategoryOfField("date_of_birth"), ""},
		{"mixi phone category", m.CategoryOfField("phone"), "identity"},
		{"jmir phone sensitive", j.IsSensitiveField("phone"), true},
		{"jmir card_token sensitive", j.IsSensitiveField("card_token"), true},
		{"jmir name sensitive", j.IsSensitiveField("name"), false},
		{"mixi name self-editable", m.SelfEditable("name"), true},
		{"mixi password self-editable", m.SelfEditable("password"), false},
		{"jmir minimum age (J26)", j.MinimumAge, 18},
		{"jmir links activity", j.LinksActivityToAccount(), true},
		{"mixi links activity", m.LinksActivityToAccount(), false},
		{"mixi granularity", m.LocationGranularity(), GranularityCountry},
		{"mixi uses ip location", m.UsesIPLocation(), true},
		{"jmir GPC purposes", strings.Join(j.GPCPurposes(), ","), "third-party-marketing"},
		{"mixi GPC purposes", strings.Join(m.GPCPurposes(), ","), ""},
		{"jmir archive exemption", j.Exempts(ExemptArchive), true},
		{"mixi archive exemption", m.Exempts(ExemptArchive), false},
		{"jmir offers erasure", j.Offers("erasure"), true},
		{"jmir offers nonsense", j.Offers("flying"), false},
		{"jmir registration accepts company (J1)", j.RegistrationAccepts("company"), true},
		{"jmir registration requires phone", j.RegistrationRequires("phone"), false},
		{"mixi registration accepts phone", m.RegistrationAccepts("phone"), false},
		{"code ttl", j.CodeTTL(), 30 * time.Minute},
		{"builtin purpose", j.Purpose(Storage) != nil && j.Purpose(Storage).Builtin, true},
		{"unknown purpose", j.Purpose("nope") == nil, true},
		{"unknown category", j.Category("nope") == nil, true},
		{"newsletter jmir", j.Newsletter("newsletter") != nil, true},
		{"newsletter mixi", m.Newsletter("updates") != nil, true},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	if r, ok := j.Retention("publications"); !ok || r.Kind != RetainArchive {
		t.Errorf("jmir publications retention = %v, %v; want archive (J19)", r, ok)
	}
	if r, ok := m.Retention("activity"); !ok || r.String() != "13 months, then monthly aggregates" {
		t.Errorf("mixi activity retention = %v, %v; want 13 months, then monthly aggregates", r, ok)
	}
	var got []string
	for _, r := range j.RecipientsFor("payment") {
		got = append(got, r.ID)
	}
	if want := []string{"hosting-us", "hosting-ca", "payment-processor"}; !slices.Equal(got, want) {
		t.Errorf("jmir RecipientsFor(payment) = %v, want %v", got, want)
	}
	// Built-ins: payment categories only for subject-request.
	for _, id := range []string{Security, LegalClaims, Storage} {
		if slices.Contains(j.Purpose(id).Uses, "payment") {
			t.Errorf("built-in %s uses payment", id)
		}
	}
	if !slices.Contains(j.Purpose(SubjectRequest).Uses, "payment") {
		t.Error("subject-request does not use payment")
	}
}

// TestPromiseJ1_RegistrationFields: JMIR's sign-up accepts exactly name,
// company, email, phone, billing address, location and organisation (plus
// the password), each a field of a declared category.
func TestPromiseJ1_RegistrationFields(t *testing.T) {
	j := example(t, "jmir.yaml")
	want := []string{"billing_address", "company", "email", "location", "name", "organisation", "password", "phone"}
	got := slices.Sorted(slices.Values(j.Registration.Fields))
	if !slices.Equal(got, want) {
		t.Errorf("registration fields = %v, want %v", got, want)
	}
	for _, f := range got {
		if j.CategoryOfField(f) == "" {
			t.Errorf("registration field %s is in no category", f)
		}
	}
}

func TestHashIgnoresLayoutNotMeaning(t *testing.T) {
	text := exampleText(t, "mixi.yaml")
	base := mustParse(t, "a", text)
	commented := mustParse(t, "b", "# a new comment\n"+strings.ReplaceAll(text, "\n\n", "\n\n\n"))
	if base.Hash() != commented.Hash() {
		t.Error("a comment and blank lines changed the hash")
	}
	changed := mustParse(t, "c", edit(t, text, "activity: 13 months", "activity: 12 months"))
	if base.Hash() == changed.Hash() {
		t.Error("a retention change kept the hash")
	}
	if string(commented.Raw()) == string(base.Raw()) {
		t.Error("Raw() does not return the file as given")
	}
}

func TestJSON(t *testing.T) {
	p := example(t, "jmir.yaml")
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Hash       string `json:"hash"`
		Version    string `json:"version"`
		Categories []struct {
			ID        string          `json:"id"`
			Retention json.RawMessage `json:"retention"`
		} `json:"categories"`
		Purposes []struct {
			ID      string `json:"id"`
			Builtin bool   `json:"builtin"`
		} `json:"purposes"`
		Recipients []json.RawMessage `json:"recipients"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if v.Hash != p.Hash() || v.Version != "2018-05-25" {
		t.Errorf("hash, version = %q, %q", v.Hash, v.Version)
	}
	if len(v.Categories) != len(p.Categories()) || v.Categories[0].ID != "identity" {
		t.Errorf("categories = %+v", v.Categories)
	}
	if got := string(v.Categories[0].Retention); got != `{"text":"account-lifetime","kind":"account-lifetime"}` {
		t.Errorf("retention JSON = %s", got)
	}
	builtins := 0
	for _, pu := range v.Purposes {
		if pu.Builtin {
			builtins++
		}
	}
	if builtins != 4 {
		t.Errorf("JSON has %d built-in purposes, want 4", builtins)
	}
	if len(v.Recipients) != len(p.Recipients) {
		t.Errorf("JSON has %d recipients, want %d", len(v.Recipients), len(p.Recipients))
	}
	if strings.Contains(string(b), "null") {
		t.Errorf("JSON holds null where a list belongs: %s", b)
	}
}

func TestParseRefusesMalformedFiles(t *testing.T) {
	tests := []struct {
		name, text string
		line       int
		msg        string
	}{
		{"empty", "", 1, "the policy file is empty"},
		{"comments only", "# nothing\n", 1, "the policy file is empty"},
		{"syntax", "controller:\n  name: x\n    bad: y\n", 3, "YAML syntax: mapping values are not allowed in this context"},
		{"two documents", exampleTextOf("minimal") + "---\nversion: 2026-02-01\n", 20, "more than one YAML document"},
		{"not a mapping", "- a\n- b\n", 1, "the policy must be a mapping of keys, found a list"},
		{"unknown top-level key", exampleTextOf("minimal") + "cookie: []\n", 20, `unknown key "cookie" in the policy`},
		{"duplicate top-level key", exampleTextOf("minimal") + "minimum_age: 18\n", 20, "minimum_age is given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(tt.text))
			var probs *Problems
			if !errors.As(err, &probs) {
				t.Fatalf("Parse error = %v, want *Problems", err)
			}
			p := probs.List[0]
			if p.Line != tt.line || !strings.Contains(p.Message, tt.msg) {
				t.Errorf("first problem = %d: %q, want %d: containing %q\n%v", p.Line, p.Message, tt.line, tt.msg, err)
			}
		})
	}
}

// exampleTextOf reads a testdata fixture.
func exampleTextOf(name string) string {
	data, err := testdataFS.ReadFile("testdata/" + name + ".yaml")
	if err != nil {
		panic(err)
	}
	return string(data)
}

func TestProblemsErrorFormat(t *testing.T) {
	ps := &Problems{List: []Problem{
		{File: "p.yaml", Line: 3, Column: 5, Message: "purpose x has no basis", Fix: "add basis:"},
		{File: "p.yaml", Line: 7, Message: "bad"},
	}}
	want := "p.yaml:3:5: purpose x has no basis (fix: add basis:)\np.yaml:7: bad"
	if got := ps.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestParseRefusesOversizedFile(t *testing.T) {
	data := make([]byte, maxPolicySize+1)
	if _, err := Parse("big.yaml", data); err == nil {
		t.Fatal("Parse accepted an oversized file")
	}
}

func TestKnownFieldsHaveLabels(t *testing.T) {
	for _, f := range KnownFields() {
		if FieldLabel(f) == f {
			t.Errorf("field %s has no label", f)
		}
	}
}

func TestCountryName(t *testing.T) {
	tests := []struct {
		code, name string
		ok         bool
	}{
		{"US", "United States", true},
		{"IN", "India", true},
		{"CA", "Canada", true},
		{"ZZ", "a country not known in advance", true},
		{"XX", "", false},
		{"us", "", false},
		{"USA", "", false},
	}
	for _, tt := range tests {
		name, ok := CountryName(tt.code)
		if name != tt.name || ok != tt.ok {
			t.Errorf("CountryName(%q) = %q, %v; want %q, %v", tt.code, name, ok, tt.name, tt.ok)
		}
	}
}

// TestGranularityAllows: an allowance lets through its own level and the
// coarser ones; an unknown value, on either side, lets nothing through,
// although rank reads it as the finest.
func TestGranularityAllows(t *testing.T) {
	levels := []Granularity{GranularityNone, GranularityCountry, GranularityRegion, GranularityCity, "cities"}
	for _, c := range []struct {
		allowance Granularity
		want      string // which of levels it allows, as a mask
	}{
		{GranularityNone, "10000"},
		{GranularityCountry, "11000"},
		{"", "11000"},
		{GranularityRegion, "11100"},
		{GranularityCity, "11110"},
		{"cities", "00000"},
		{"City", "00000"},
	} {
		got := ""
		for _, l := range levels {
			if c.allowance.Allows(l) {
				got += "1"
			} else {
				got += "0"
			}
		}
		if got != c.want {
			t.Errorf("%q allows %s of none, country, region, city, unknown; want %s", c.allowance, got, c.want)
		}
	}
	if Granularity("cities").rank() != GranularityCity.rank() {
		t.Error("an unknown granularity no longer ranks as the finest")
	}
}
