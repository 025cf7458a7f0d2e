package mailtest

import (
	"strings"
	"testing"
)

func TestParseNestedBase64AndLinks(t *testing.T) {
	raw := strings.ReplaceAll(`From: a@example.org
To: b@example.org
Subject: =?utf-8?q?Caf=C3=A9?=
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=outer

--outer
Content-Type: multipart/alternative; boundary=inner

--inner
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

VmlzaXQgaHR0cHM6Ly9zaXRlLmV4YW1w
bGUvdmVyaWZ5P3Rva2VuPWFiYy4K
--inner
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: quoted-printable

<a href=3D"https://site.example/verify?token=3Dabc&amp;x=3D1">go</a>
--inner--
--outer--
`, "\n", "\r\n")
	r, err := Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if r.Subject != "Café" {
		t.Errorf("Subject = %q, want Café", r.Subject)
	}
	if r.Text != "Visit https://site.example/verify?token=abc.\n" {
		t.Errorf("Text = %q", r.Text)
	}
	if !strings.Contains(r.HTML, `href="https://site.example/verify?token=abc&amp;x=1"`) {
		t.Errorf("HTML = %q", r.HTML)
	}
	if got := r.Link("https://site.example/verify"); got != "https://site.example/verify?token=abc" {
		t.Errorf("Link = %q, want the text part's link without the full stop", got)
	}
	r.Text = ""
	if got := r.Link("https://site.example/"); got != "https://site.example/verify?token=abc&x=1" {
		t.Errorf("Link from HTML = %q", got)
	}
	if !SentTo("B@example.org")(Received{To: []string{"b@example.org"}}) {
		t.Error("SentTo is not case-insensitive")
	}
}
