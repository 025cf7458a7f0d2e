package policy

import (
	"embed"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// wantRE finds "# want: message" after YAML content on a line; one line may
// carry several.
var wantRE = regexp.MustCompile(`^\s*[^#\s].*?#\s*want:\s*(.*)$`)

type lineMsg struct {
	Line int
	Msg  string
}

// wantedProblems reads the "# want:" annotations of a fixture.
func wantedProblems(t *testing.T, data []byte) []lineMsg {
	t.Helper()
	var out []lineMsg
	for i, line := range strings.Split(string(data), "\n") {
		m := wantRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		for _, w := range strings.Split(m[1], "# want:") {
			out = append(out, lineMsg{i + 1, strings.TrimSpace(w)})
		}
	}
	return out
}

func sortLM(s []lineMsg) {
	slices.SortFunc(s, func(a, b lineMsg) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return strings.Compare(a.Msg, b.Msg)
	})
}

// TestBrokenFixtures parses each broken fixture and asserts it fails with
// exactly the problems its "# want:" comments name, on those lines, each
// with a fix.
func TestBrokenFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		want := wantedProblems(t, data)
		if len(want) == 0 {
			continue
		}
		n++
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Parse(f, data)
			var probs *Problems
			if !errors.As(err, &probs) {
				t.Fatalf("Parse(%s) error = %v, want *Problems", f, err)
			}
			var got []lineMsg
			for _, p := range probs.List {
				got = append(got, lineMsg{p.Line, p.Message})
				if p.Fix == "" {
					t.Errorf("problem %q has no fix", p)
				}
				if p.File != f {
					t.Errorf("problem %q names file %q, want %q", p, p.File, f)
				}
			}
			sortLM(got)
			sortLM(want)
			if !slices.Equal(got, want) {
				t.Errorf("problems of %s:\n got: %v\nwant: %v\nfull error:\n%v", f, got, want, err)
			}
		})
	}
	if n < 8 {
		t.Fatalf("found %d broken fixtures, want at least 8", n)
	}
}

// TestPromiseM3_PartnerCookiesRefused: Mixi's own text lets partners set
// cookies (M15), which contradicts "no tracking cookies of any kind" (M3);
// policy check must refuse it, naming the cookie's line.
func TestPromiseM3_PartnerCookiesRefused(t *testing.T) {
	_, err := Load("testdata/mixi-partner-cookies.yaml")
	if err == nil {
		t.Fatal("Load(mixi-partner-cookies.yaml) succeeded, want a contradiction")
	}
	msg := err.Error()
	for _, want := range []string{
		"testdata/mixi-partner-cookies.yaml:232:11: contradiction: promises.no_tracking_cookies is true, but cookie partner_ads is an advertising cookie (fix: ",
		"testdata/mixi-partner-cookies.yaml:229:5: contradiction: promises.no_tracking_cookies is true, but cookie partner_ads is set by a partner (fix: ",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not contain %q:\n%s", want, msg)
		}
	}
}

func TestMinimalFixtureIsValid(t *testing.T) {
	if _, err := Load("testdata/minimal.yaml"); err != nil {
		t.Fatalf("Load(minimal.yaml): %v", err)
	}
}

//go:embed testdata/*.yaml
var testdataFS embed.FS
