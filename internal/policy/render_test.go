package policy

import (
	"encoding/xml"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRenderMentionsEverything renders both examples in both formats and
// checks the notice names every purpose, recipient and retention rule, the
// controller, the cookies, the rights and the text-only statements.
func TestRenderMentionsEverything(t *testing.T) {
	meta := Meta{Number: 3, EffectiveDate: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		Previous: []VersionRef{{Number: 2, EffectiveDate: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), Significant: true}, {Number: 1}}}
	for _, name := range []string{"jmir.yaml", "mixi.yaml"} {
		p := example(t, name)
		for _, format := range []string{"markdown", "html"} {
			t.Run(name+"/"+format, func(t *testing.T) {
				out, err := Render(p, meta, format)
				if err != nil {
					t.Fatal(err)
				}
				s := string(out)
				if !strings.Contains(s, "(/privacy/versions/2)") && !strings.Contains(s, `href="/privacy/versions/2"`) {
					t.Error("notice does not link to version 2")
				}
				if format == "html" {
					s = htmlText(t, out)
				}
				var want []string
				for _, pu := range p.Purposes() {
					want = append(want, pu.ID, pu.Description)
				}
				for _, r := range p.Recipients {
					want = append(want, r.Name)
				}
				for _, c := range p.Categories() {
					want = append(want, c.ID, c.Retention.Describe())
				}
				for _, c := range p.Cookies {
					want = append(want, c.Name)
				}
				for _, n := range p.Newsletters {
					want = append(want, n.Name)
				}
				for _, st := range p.Statements {
					want = append(want, st.Text)
				}
				for _, tr := range p.Transfers {
					n, _ := CountryName(tr.To)
					want = append(want, n)
				}
				for _, st := range p.Stores {
					want = append(want, st.Name)
				}
				want = append(want, p.Controller.Name, p.Controller.Contact, p.Controller.Authority.Name,
					"1 November 2026", "version 3", "Version 2", "Erasure", "Access",
					"not for anyone under "+strconv.Itoa(p.MinimumAge), IP2LocationAttribution)
				for _, w := range want {
					if !strings.Contains(s, w) {
						t.Errorf("%s notice does not mention %q", format, w)
					}
				}
			})
		}
	}
}

// TestPromiseJ27_TransfersInNotice: the JMIR notice says data is stored in
// the US and Canada and processed in India and the US.
func TestPromiseJ27_TransfersInNotice(t *testing.T) {
	out, err := Render(example(t, "jmir.yaml"), Meta{}, "markdown")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Your data is stored and processed in United States",
		"Your data is stored in Canada",
		"Your data is processed in India",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("notice lacks %q", want)
		}
	}
}

// TestPromiseJ3_StoresInNotice: the notice names logs, back-end databases
// and analytics systems.
func TestPromiseJ3_StoresInNotice(t *testing.T) {
	out, err := Render(example(t, "jmir.yaml"), Meta{}, "markdown")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"System log files", "Back-end databases", "Analytics systems"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("notice lacks %q", want)
		}
	}
}

func TestRenderAttributionOnlyWithIPLocation(t *testing.T) {
	p := mustParse(t, "minimal", exampleTextOf("minimal"))
	for _, format := range []string{"markdown", "html"} {
		out, err := Render(p, Meta{}, format)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(out), "IP2Location") {
			t.Errorf("%s notice of a policy without IP location carries the IP2Location line", format)
		}
	}
}

func TestRenderEscapesHTML(t *testing.T) {
	text := strings.Replace(exampleTextOf("minimal"), "name: Example", `name: "Evil <script>alert(1)</script> & Co"`, 1)
	p := mustParse(t, "evil", text)
	out, err := Render(p, Meta{}, "html")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "<script>") {
		t.Error("controller name was not escaped")
	}
	if !strings.Contains(string(out), "Evil &lt;script&gt;") {
		t.Error("escaped controller name missing")
	}
}

func TestRenderHTMLBody(t *testing.T) {
	body, err := RenderHTMLBody(example(t, "mixi.yaml"), Meta{Number: 1})
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSpace(string(body))
	if !strings.HasPrefix(s, "<article") || !strings.HasSuffix(s, "</article>") {
		t.Errorf("RenderHTMLBody is not one article: %.80q … %q", s, s[max(0, len(s)-40):])
	}
	if strings.Contains(s, "<html") || strings.Contains(s, "<head>") {
		t.Error("RenderHTMLBody holds document elements")
	}
	full, err := Render(example(t, "mixi.yaml"), Meta{Number: 1}, "html")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<!doctype html>", `<html lang="en">`, "<title>", `<main id="content">`, s} {
		if !strings.Contains(string(full), want) {
			t.Errorf("document lacks %.60q", want)
		}
	}
}

// A category kept for a legal obligation says so in the notice, in the
// policy's words.
func TestRenderLegalObligation(t *testing.T) {
	text := exampleText(t, "jmir.yaml")
	text = edit(t, text, "    payment: true\n", "    payment: true\n    legal_obligation: Tax law obliges us to keep them for ten years.\n")
	text = edit(t, text, "  payment: account-lifetime\n", "  payment: account-lifetime + 10 years\n")
	out, err := Render(mustParse(t, "jmir.yaml", text), Meta{Number: 1}, "markdown")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "because the law obliges us to: Tax law obliges us to keep them for ten years.") {
		t.Errorf("the notice does not say why payment data outlives an erasure:\n%s", out)
	}
}

// J5: the notice names each service people may sign in with and all that
// a sign-in imports from it.
func TestPromiseJ5_SignInProvidersInNotice(t *testing.T) {
	p := example(t, "jmir.yaml")
	for _, format := range []string{"markdown", "html"} {
		out, err := Render(p, Meta{}, format)
		if err != nil {
			t.Fatal(err)
		}
		if want := "We then receive from ORCID only your profile picture, your name and your email address"; !strings.Contains(string(out), want) {
			t.Errorf("%s notice lacks %q", format, want)
		}
	}
}

func TestRenderUnknownFormat(t *testing.T) {
	if _, err := Render(example(t, "mixi.yaml"), Meta{}, "pdf"); err == nil {
		t.Error("Render(pdf) succeeded")
	}
}

// htmlText checks the document is well-formed (every element closed, as an
// XML reader sees it, void elements aside) and returns its text.
func htmlText(t *testing.T, doc []byte) string {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(strings.Replace(string(doc), "<!doctype html>", "", 1)))
	d.Strict = false
	d.AutoClose = []string{"meta", "br", "link", "img", "input", "hr"}
	d.Entity = xml.HTMLEntity
	var b strings.Builder
	depth := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("HTML is not well-formed: %v", err)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			b.Write(tk)
		}
	}
	if depth != 0 {
		t.Errorf("HTML leaves %d elements open", depth)
	}
	return b.String()
}
