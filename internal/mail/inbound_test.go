package mail_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/base64"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"steward/internal/fault"
	"steward/internal/mail"
)

// crlf writes a message the way it travels: CRLF line ends.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// b64 wraps data in base64 lines of 76 characters.
func b64(data []byte) string {
	enc := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\n")
	return b.String()
}

const replyHeader = `From: Ann Member <ann@Example.ORG>
To: support+t0k3n@desk.example
Subject: Re: Your request
Message-ID: <r1@mail.example.org>
In-Reply-To: <s1@desk.example> <s0@desk.example>
Date: Mon, 02 Nov 2026 10:00:00 +0100
MIME-Version: 1.0
`

// withFiles is a reply carrying files, each as name, claimed type, bytes.
func withFiles(files ...any) string {
	var b strings.Builder
	b.WriteString(replyHeader + "Content-Type: multipart/mixed; boundary=\"mix\"\n\n--mix\nContent-Type: text/plain; charset=utf-8\n\nSee attached.\n")
	for i := 0; i+2 < len(files); i += 3 {
		name := files[i].(string)
		if enc, ok := strings.CutPrefix(name, "*"); ok { // an RFC 2231 name, percent-encoded
			fmt.Fprintf(&b, "--mix\nContent-Type: %s\nContent-Disposition: attachment; filename*=utf-8''%s\n", files[i+1], enc)
		} else {
			fmt.Fprintf(&b, "--mix\nContent-Type: %s; name=\"%s\"\nContent-Disposition: attachment; filename=\"%s\"\n", files[i+1], name, name)
		}
		fmt.Fprintf(&b, "Content-Transfer-Encoding: base64\n\n%s", b64(files[i+2].([]byte)))
	}
	b.WriteString("--mix--\n")
	return crlf(b.String())
}

func pngBytes(t testing.TB) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewRGBA(image.Rect(0, 0, 2, 2))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var pdfBytes = []byte("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")

type zipEntry struct {
	name string
	data []byte
}

func zipOf(t testing.TB, entries ...zipEntry) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		w, err := zw.Create(e.name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(e.data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rawZip writes one entry with a header as given, whatever it claims.
func rawZip(t testing.TB, fh zip.FileHeader, data []byte) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateRaw(&fh)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func deflated(data []byte) []byte {
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.BestCompression)
	fw.Write(data)
	fw.Close()
	return buf.Bytes()
}

func tarOf(t testing.TB, name string, data []byte) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data))})
	tw.Write(data)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// docx is the start of an Office document: its content types first.
func docx(t testing.TB, extra ...zipEntry) []byte {
	return zipOf(t, append([]zipEntry{
		{"[Content_Types].xml", []byte(`<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>`)},
		{"word/document.xml", []byte(`<w:document/>`)},
	}, extra...)...)
}

// nested builds a message whose multipart containers nest depth deep.
func nested(depth int) string {
	var b strings.Builder
	b.WriteString(replyHeader)
	for i := range depth {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\n\n--b%d\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\n\ndeep\n")
	for i := depth - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\n", i)
	}
	return crlf(b.String())
}

// Sample messages, shared with FuzzParseInbound as its seeds.
var (
	msgPlain = crlf(replyHeader + `Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Thank you, it works now.=20
Caf=C3=A9 =E2=82=AC5
`)
	msgAlternative = crlf(replyHeader + `Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=utf-8

The plain version.
--alt
Content-Type: text/html; charset=utf-8

<p>The <b>HTML</b> version.</p>
--alt--
`)
	msgHTMLOnly = crlf(replyHeader + `Content-Type: text/html; charset=utf-8

<!DOCTYPE html>
<html><head><title>Secret title</title><style>p { color: red }</style>
<script>var stolen = document.cookie;</script></head>
<body><p>Hello&nbsp;&amp; welcome,</p><div>first line</div><div>second   line</div>
<script type="text/javascript">alert("xss")</script>
<p>Visit <a href="https://site.example/help">our help</a> &lt;now&gt;.<br>Bye</p>
<!-- a comment --><ul><li>one</li><li>two</li></ul></body></html>
`)
	msgSubject2047 = crlf(`From: =?utf-8?q?J=C3=B6rg?= <jorg@example.de>
To: support@desk.example
Subject: =?utf-8?b?R3LDvMOfZSDwn5GL?= =?iso-8859-1?q?und_caf=E9?=
Content-Type: text/plain

Hi
`)
	msgLatin1 = crlf(`From: ann@example.org
Subject: =?iso-8859-1?q?Ol=E9?=
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Voil=E0, caf=E9 cr=E8me.
`)
	msgWindows1252 = crlf("From: ann@example.org\nContent-Type: text/plain; charset=windows-1252\nContent-Transfer-Encoding: 8bit\n\nQuote: \x93hi\x94 \x80 10\n")
	msgFlowed      = crlf("From: ann@example.org\nContent-Type: text/plain; charset=utf-8; format=flowed\n\nThis is one long \nparagraph.\n\n-- \nAnn\n")
	msgForgedAuth  = crlf(`Authentication-Results: mx.desk.example; spf=pass smtp.mailfrom=example.org;
 dkim=fail (bad signature) header.d=example.org; dkim=pass header.d=example.org;
 dmarc=pass (p=reject) header.from=example.org
Authentication-Results: mx.desk.example; spf=fail; dkim=fail; dmarc=fail
From: ann@example.org
Content-Type: text/plain

Hi
`)
	msgNoFrom         = crlf("To: support@desk.example\nSubject: x\n\nHi\n")
	msgBadHeader      = crlf("From: ann@example.org\nThis line has no colon\n\nHi\n")
	msgBrokenBoundary = crlf(replyHeader + "Content-Type: multipart/mixed; boundary=\"abc\"\n\n--abc\nContent-Type: text/plain\n\nnever closed\n")
	msgNoBoundary     = crlf(replyHeader + "Content-Type: multipart/mixed\n\n--abc\n\nHi\n--abc--\n")
)

func parse(t testing.TB, raw string, lim mail.InboundLimits) *mail.Inbound {
	t.Helper()
	m, err := mail.ParseInbound(strings.NewReader(raw), lim, t.TempDir())
	if err != nil {
		t.Fatalf("ParseInbound: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestParseInboundPlain(t *testing.T) {
	m := parse(t, msgPlain, mail.InboundLimits{})
	checks := []struct{ name, got, want string }{
		{"From", m.From, "ann@example.org"},
		{"Subject", m.Subject, "Re: Your request"},
		{"MessageID", m.MessageID, "r1@mail.example.org"},
		{"InReplyTo", m.InReplyTo, "s1@desk.example"},
		{"Text", m.Text, "Thank you, it works now. \nCafé €5"},
		{"To", strings.Join(m.To, ","), "support+t0k3n@desk.example"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if want := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC); !m.Date.Equal(want) {
		t.Errorf("Date = %v, want %v", m.Date, want)
	}
	if len(m.Attachments) != 0 || m.Auth != (mail.AuthResults{}) {
		t.Errorf("attachments %d, auth %+v: want none", len(m.Attachments), m.Auth)
	}
}

func TestParseInboundAlternativePrefersPlain(t *testing.T) {
	m := parse(t, msgAlternative, mail.InboundLimits{})
	if m.Text != "The plain version." {
		t.Errorf("Text = %q, want the plain part", m.Text)
	}
}

// TestParseInboundHTMLOnly: with no plain part, the HTML becomes text:
// no tag, nothing of head, script or style, entities decoded.
func TestParseInboundHTMLOnly(t *testing.T) {
	m := parse(t, msgHTMLOnly, mail.InboundLimits{})
	want := "Hello & welcome,\n\nfirst line\nsecond line\n\nVisit our help (https://site.example/help) <now>.\nBye\n\n- one\n- two"
	if m.Text != want {
		t.Errorf("Text =\n%q\nwant\n%q", m.Text, want)
	}
	for _, bad := range []string{"stolen", "cookie", "alert", "xss", "color", "Secret title", "comment", "<p", "&amp;"} {
		if strings.Contains(m.Text, bad) {
			t.Errorf("Text holds %q: %q", bad, m.Text)
		}
	}
}

func TestParseInboundHTMLEdgeCases(t *testing.T) {
	for _, c := range []struct{ name, html, want string }{
		{"head never closed", "<html><head><title>t</title><p>body text</p>", "body text"},
		{"script never closed", "<p>before</p><script>secret(", "before"},
		{"self-closing script", "<p>a</p><script/>hidden</script><p>b</p>", "a\n\nb"},
		{"style in body", "<div>x<style>.y{}</style>z</div>", "xz"},
		{"javascript link dropped", `<a href="javascript:alert(1)">click</a>`, "click"},
		{"mailto shown once", `<a href="mailto:help@desk.example">help@desk.example</a>`, "help@desk.example"},
		{"svg text dropped", `<p>logo<svg><text>junk</text></svg></p>`, "logo"},
		{"numeric entities", "<p>&#x48;&#105; &euro;</p>", "Hi €"},
	} {
		t.Run(c.name, func(t *testing.T) {
			raw := crlf("From: ann@example.org\nContent-Type: text/html\n\n") + c.html
			if m := parse(t, raw, mail.InboundLimits{}); m.Text != c.want {
				t.Errorf("Text = %q, want %q", m.Text, c.want)
			}
		})
	}
}

func TestParseInboundSubjectRFC2047(t *testing.T) {
	m := parse(t, msgSubject2047, mail.InboundLimits{})
	if want := "Grüße 👋und café"; m.Subject != want {
		t.Errorf("Subject = %q, want %q", m.Subject, want)
	}
	if m.From != "jorg@example.de" {
		t.Errorf("From = %q", m.From)
	}
}

func TestParseInboundCharsets(t *testing.T) {
	for _, c := range []struct{ name, raw, text, subject string }{
		{"iso-8859-1", msgLatin1, "Voilà, café crème.", "Olé"},
		{"windows-1252", msgWindows1252, "Quote: “hi” € 10", ""},
		{"unlabelled 8-bit", crlf("From: a@example.org\n\ncaf\xe9\n"), "café", ""},
		{"unknown charset, UTF-8 bytes", crlf("From: a@example.org\nContent-Type: text/plain; charset=x-made-up\n\ncafé\n"), "café", ""},
		{"koi8-r", crlf("From: a@example.org\nContent-Type: text/plain; charset=koi8-r\n\n\xf0\xd2\xc9\xd7\xc5\xd4\n"), "Привет", ""},
		{"flowed", msgFlowed, "This is one long paragraph.\n\n-- \nAnn", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := parse(t, c.raw, mail.InboundLimits{})
			if m.Text != c.text || m.Subject != c.subject {
				t.Errorf("Text, Subject = %q, %q; want %q, %q", m.Text, m.Subject, c.text, c.subject)
			}
		})
	}
}

// spoolFiles lists the open descriptors of this process that reach a
// file in dir: a spool is unlinked at once, so only /proc sees it.
func spoolFiles(t *testing.T, dir string) []string {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc: cannot see spool files")
	}
	var out []string
	for _, fd := range fds {
		p := filepath.Join("/proc/self/fd", fd.Name())
		if target, err := os.Readlink(p); err == nil && strings.HasPrefix(target, dir+"/") {
			out = append(out, p)
		}
	}
	return out
}

// TestParseInboundAttachments: each attachment is typed from its bytes,
// named safely, spooled encrypted in the spool directory (not a byte of
// it in the clear on disk) and released by Close.
func TestParseInboundAttachments(t *testing.T) {
	secret := bytes.Repeat([]byte("confidential-attachment-text "), 200)
	raw := withFiles(
		"photo.txt", "text/plain", pngBytes(t), // the claim is false: the bytes are a PNG
		"../../etc/invoice.pdf", "application/octet-stream", pdfBytes,
		"evil\u202egnp.exe", "image/png", []byte("MZ\x90\x00 not really"),
		"notes.txt", "text/plain", secret,
	)
	dir := t.TempDir()
	m, err := mail.ParseInbound(strings.NewReader(raw), mail.InboundLimits{}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Text != "See attached." {
		t.Errorf("Text = %q", m.Text)
	}
	want := []struct {
		name, ctype string
		size        int
	}{
		{"photo.txt", "image/png", len(pngBytes(t))},
		{"invoice.pdf", "application/pdf", len(pdfBytes)},
		{"evilgnp.exe", "application/vnd.microsoft.portable-executable", 15},
		{"notes.txt", "text/plain; charset=utf-8", len(secret)},
	}
	if len(m.Attachments) != len(want) {
		t.Fatalf("%d attachments, want %d", len(m.Attachments), len(want))
	}
	for i, w := range want {
		a := m.Attachments[i]
		if a.Name != w.name || a.Size != int64(w.size) {
			t.Errorf("attachment %d: %q (%d bytes), want %q (%d bytes)", i, a.Name, a.Size, w.name, w.size)
		}
		if i != 2 && a.ContentType != w.ctype { // an MZ stub's type is mimetype's call; only the claim must not win
			t.Errorf("attachment %d: type %q, want %q", i, a.ContentType, w.ctype)
		}
	}
	if m.Attachments[2].ContentType == "image/png" {
		t.Error("the sender's claimed type was taken")
	}
	r, _ := m.Attachments[3].Open()
	if got, _ := io.ReadAll(r); !bytes.Equal(got, secret) {
		t.Errorf("attachment reads back %d bytes, not the %d sent", len(got), len(secret))
	}
	files := spoolFiles(t, dir)
	if len(files) != len(want) {
		t.Errorf("%d spool files open in the spool directory, want %d", len(files), len(want))
	}
	for _, f := range files {
		onDisk, _ := os.ReadFile(f)
		if bytes.Contains(onDisk, []byte("confidential")) || bytes.Contains(onDisk, []byte("%PDF")) {
			t.Errorf("spool file %s holds plaintext", f)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if left := spoolFiles(t, dir); len(left) != 0 {
		t.Errorf("%d spool files still open after Close", len(left))
	}
	if r, err := m.Attachments[0].Open(); err == nil {
		if _, err := io.ReadAll(r); err == nil {
			t.Error("an attachment still reads after Close")
		}
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestParseInboundAttachmentNotInMemory: an 8 MB attachment goes to the
// spool, not to the heap. (Not parallel: it reads the process's
// allocation counter.)
func TestParseInboundAttachmentNotInMemory(t *testing.T) {
	big := make([]byte, 8<<20)
	for i := range big {
		big[i] = byte(i * 7 % 251)
	}
	raw := withFiles("big.bin", "application/octet-stream", big)
	big = nil
	dir := t.TempDir()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m, err := mail.ParseInbound(strings.NewReader(raw), mail.InboundLimits{}, dir)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Attachments[0].Size != 8<<20 {
		t.Fatalf("size %d", m.Attachments[0].Size)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 2<<20 {
		t.Errorf("parsing an 8 MiB attachment allocated %d KiB: it is being held in memory", alloc>>10)
	}
}

// TestParseInboundZip: archives of documents pass; archives of archives,
// zip bombs and encrypted archives are refused, found by name or by the
// first bytes of an entry.
func TestParseInboundZip(t *testing.T) {
	inner := zipOf(t, zipEntry{"a.txt", []byte("hello")})
	zeros := make([]byte, 20<<20)
	for _, c := range []struct {
		name string
		zip  []byte
		code fault.Code // "" when accepted
		msg  string
	}{
		{"plain files", zipOf(t, zipEntry{"a.txt", []byte("hello")}, zipEntry{"dir/b.pdf", pdfBytes}), "", ""},
		{"spreadsheet inside", zipOf(t, zipEntry{"report.xlsx", docx(t)}), "", ""},
		{"document embedding a workbook", docx(t, zipEntry{"word/embeddings/chart.xlsx", docx(t)}), "", ""},
		{"zip of zips by name", zipOf(t, zipEntry{"inner.zip", []byte("not even a zip")}), fault.Unsupported, "zip of zips"},
		{"zip of zips by magic", zipOf(t, zipEntry{"data.bin", inner}), fault.Unsupported, "zip of zips"},
		{"zip renamed as a spreadsheet", zipOf(t, zipEntry{"report.xlsx", inner}), fault.Unsupported, "zip of zips"},
		{"gzip inside", zipOf(t, zipEntry{"log.dat", []byte("\x1f\x8b\x08\x00rest")}), fault.Unsupported, "zip of zips"},
		{"tar inside", zipOf(t, zipEntry{"backup", tarOf(t, "x.txt", []byte("x"))}), fault.Unsupported, "zip of zips"},
		{"7z by name", zipOf(t, zipEntry{"more.7Z", []byte("x")}), fault.Unsupported, "zip of zips"},
		{"unpacks 1000 times its size", zipOf(t, zipEntry{"zeros.bin", zeros}), fault.Unsupported, "more than 100 times its size"},
		{"declares more than 1 GiB", rawZip(t, zip.FileHeader{Name: "big.bin", Method: zip.Deflate, UncompressedSize64: 2 << 30, CompressedSize64: uint64(len(deflated([]byte("x"))))}, deflated([]byte("x"))), fault.TooLarge, "more than 1 GiB"},
		{"encrypted", rawZip(t, zip.FileHeader{Name: "secret.txt", Method: zip.Store, Flags: 0x1, UncompressedSize64: 4, CompressedSize64: 4}, []byte("abcd")), fault.Unsupported, "encrypted archive"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := mail.ParseInbound(strings.NewReader(withFiles("files.zip", "application/zip", c.zip)), mail.InboundLimits{}, t.TempDir())
			if c.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				m.Close()
				return
			}
			if m != nil || fault.CodeOf(err) != c.code || !strings.Contains(fault.MessageOf(err), c.msg) {
				t.Fatalf("got %v, %v; want a %s fault saying %q", m, err, c.code, c.msg)
			}
		})
	}
}

// TestParseInboundRefused: what is not mail, or too much of it, is
// refused with a fault the sender may be told.
func TestParseInboundRefused(t *testing.T) {
	many := func(n int) string {
		var b strings.Builder
		b.WriteString(replyHeader + "Content-Type: multipart/mixed; boundary=m\n\n")
		for range n {
			b.WriteString("--m\nContent-Type: text/plain\n\nx\n")
		}
		b.WriteString("--m--\n")
		return crlf(b.String())
	}
	files := func(n int) string {
		args := []any{}
		for i := range n {
			args = append(args, fmt.Sprintf("f%d.txt", i), "text/plain", []byte("x"))
		}
		return withFiles(args...)
	}
	for _, c := range []struct {
		name string
		raw  string
		lim  mail.InboundLimits
		code fault.Code
		msg  string
	}{
		{"no From", msgNoFrom, mail.InboundLimits{}, fault.Invalid, "no From field"},
		{"From not an address", crlf("From: nobody\n\nHi\n"), mail.InboundLimits{}, fault.Invalid, "From field is not a valid address"},
		{"two From fields", crlf("From: a@example.org\nFrom: b@example.org\n\nHi\n"), mail.InboundLimits{}, fault.Invalid, "more than one From"},
		{"unreadable header", msgBadHeader, mail.InboundLimits{}, fault.Invalid, "header cannot be read"},
		{"empty", "", mail.InboundLimits{}, fault.Invalid, "header cannot be read"},
		{"boundary never closed", msgBrokenBoundary, mail.InboundLimits{}, fault.Invalid, "not valid MIME"},
		{"no boundary", msgNoBoundary, mail.InboundLimits{}, fault.Invalid, "has no boundary"},
		{"boundary never appears", crlf(replyHeader + "Content-Type: multipart/mixed; boundary=zz\n\nplain text only\n"), mail.InboundLimits{}, fault.Invalid, "boundary is missing"},
		{"bad Content-Type", crlf("From: a@example.org\nContent-Type: text/plain; a=1; a=2\n\nHi\n"), mail.InboundLimits{}, fault.Invalid, "Content-Type"},
		{"bad base64", crlf(replyHeader + "Content-Type: multipart/mixed; boundary=mix\n\n--mix\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment\n\n!!!not base64!!!\n--mix--\n"), mail.InboundLimits{}, fault.Invalid, "badly encoded"},
		{"unknown transfer encoding", crlf("From: a@example.org\nContent-Transfer-Encoding: x-uuencode\n\nbegin 644 x\n"), mail.InboundLimits{}, fault.Unsupported, "x-uuencode"},
		{"unknown charset, not UTF-8", crlf("From: a@example.org\nContent-Type: text/plain; charset=x-made-up\n\n\xff\xfe\n"), mail.InboundLimits{}, fault.Unsupported, "x-made-up"},
		{"nested 9 deep", nested(9), mail.InboundLimits{}, fault.Invalid, "nested more than 8 levels"},
		{"too many parts", many(60), mail.InboundLimits{}, fault.TooLarge, "more than 50 MIME parts"},
		{"too many attachments", files(21), mail.InboundLimits{}, fault.TooLarge, "more than 20 attachments"},
		{"larger than MaxBytes", msgPlain + strings.Repeat("x", 2000), mail.InboundLimits{MaxBytes: 1000}, fault.TooLarge, "the message is larger than 1000 bytes"},
		{"excess after the last part", msgAlternative + strings.Repeat("epilogue\r\n", 200), mail.InboundLimits{MaxBytes: 1 << 10}, fault.TooLarge, "larger than 1 KiB"},
		{"attachment past MaxBytes", withFiles("a.bin", "application/octet-stream", make([]byte, 4<<10)), mail.InboundLimits{MaxBytes: 4 << 10}, fault.TooLarge, "larger than 4 KiB"},
		{"header too large", crlf("From: a@example.org\n" + strings.Repeat("X-Pad: "+strings.Repeat("p", 900)+"\n", 400) + "\nHi\n"), mail.InboundLimits{}, fault.TooLarge, "header is larger than 256 KiB"},
		{"text too long", crlf("From: a@example.org\n\n" + strings.Repeat("words ", 300)), mail.InboundLimits{MaxTextBytes: 1 << 10}, fault.TooLarge, "text is longer than 1 KiB"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := mail.ParseInbound(strings.NewReader(c.raw), c.lim, t.TempDir())
			if m != nil || fault.CodeOf(err) != c.code || !strings.Contains(fault.MessageOf(err), c.msg) {
				t.Fatalf("got %v, %v; want a %s fault saying %q", m, err, c.code, c.msg)
			}
		})
	}
	// Eight levels are allowed.
	if m := parse(t, nested(8), mail.InboundLimits{}); m.Text != "deep" {
		t.Errorf("8 levels deep: Text = %q", m.Text)
	}
}

// TestParseInboundAuthResults: only the topmost Authentication-Results,
// and only when the trusted relay wrote it, is believed.
func TestParseInboundAuthResults(t *testing.T) {
	forgedOnTop := crlf("Authentication-Results: mx.desk.example; spf=pass; dkim=pass; dmarc=pass\nFrom: a@example.org\n\nHi\n")
	for _, c := range []struct {
		name, raw, trusted string
		want               mail.AuthResults
	}{
		{"trusted relay on top", msgForgedAuth, "mx.desk.example", mail.AuthResults{SPF: "pass", DKIM: "pass", DMARC: "pass"}},
		{"trusted id compared case-blind", msgForgedAuth, "MX.Desk.Example", mail.AuthResults{SPF: "pass", DKIM: "pass", DMARC: "pass"}},
		{"sender's header, another id", msgForgedAuth, "relay.other.example", mail.AuthResults{}},
		{"no trusted id configured", msgForgedAuth, "", mail.AuthResults{}},
		{"the relay added none: the sender's is ignored", crlf("Authentication-Results: evil.example; spf=pass; dmarc=pass\nFrom: a@example.org\n\nHi\n"), "mx.desk.example", mail.AuthResults{}},
		{"comments and quoted reasons", crlf("Authentication-Results: mx.desk.example 1; spf=softfail (ip (nested) 1.2.3.4) smtp.mailfrom=a@example.org;\n dkim=none reason=\"no; signature\"; dmarc=fail\nFrom: a@example.org\n\nHi\n"), "mx.desk.example", mail.AuthResults{SPF: "softfail", DKIM: "none", DMARC: "fail"}},
		{"forged below the relay's", crlf("Authentication-Results: mx.desk.example; spf=fail\n") + forgedOnTop, "mx.desk.example", mail.AuthResults{SPF: "fail"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := parse(t, c.raw, mail.InboundLimits{TrustedAuthServ: c.trusted})
			if m.Auth != c.want {
				t.Errorf("Auth = %+v, want %+v", m.Auth, c.want)
			}
		})
	}
}

func TestParseInboundAddresses(t *testing.T) {
	raw := crlf("From: \"Ann, Member\" <Ann.M@EXAMPLE.org>\nTo: support@desk.example, broken@@x, Bob <bob@Example.NET>\nCc: undisclosed-recipients:;\nCc: carol@example.com\n\nHi\n")
	m := parse(t, raw, mail.InboundLimits{})
	if m.From != "Ann.M@example.org" {
		t.Errorf("From = %q", m.From)
	}
	if got := strings.Join(m.To, ","); got != "support@desk.example,bob@example.net" {
		t.Errorf("To = %q", got)
	}
	if got := strings.Join(m.Cc, ","); got != "carol@example.com" {
		t.Errorf("Cc = %q", got)
	}
}

func TestParseInboundFileNames(t *testing.T) {
	long := strings.Repeat("é", 300) + ".pdf"
	raw := withFiles(
		`C:\Users\ann\report.pdf`, "application/pdf", pdfBytes,
		"..", "application/pdf", pdfBytes,
		long, "application/pdf", pdfBytes,
		"*a%09b%01c%3F%E2%80%AEfdp.exe", "application/pdf", pdfBytes,
	)
	m := parse(t, raw, mail.InboundLimits{})
	names := []string{}
	for _, a := range m.Attachments {
		names = append(names, a.Name)
	}
	if names[0] != "report.pdf" || names[1] != "attachment.pdf" || names[3] != "a bc_fdp.exe" {
		t.Errorf("names = %q", names)
	}
	if n := names[2]; len(n) > 200 || !strings.HasSuffix(n, ".pdf") || !strings.HasPrefix(n, "éé") {
		t.Errorf("long name became %q (%d bytes)", n, len(n))
	}
}

// BenchmarkParseInbound: a typical reply, 20 KB of quoted-printable text
// with a 200 KB attachment.
func BenchmarkParseInbound(b *testing.B) {
	text := strings.Repeat("Thank you for the quick answer, the problem is solved now. Caf=C3=A9.=\n", 280)
	att := make([]byte, 200<<10)
	for i := range att {
		att[i] = byte(i * 31 % 253)
	}
	copy(att, pdfBytes)
	raw := crlf(replyHeader+"Content-Type: multipart/mixed; boundary=mix\n\n--mix\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"+text+
		"\n--mix\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=scan.pdf\nContent-Transfer-Encoding: base64\n\n") +
		crlf(b64(att)) + crlf("--mix--\n")
	dir := b.TempDir()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		m, err := mail.ParseInbound(strings.NewReader(raw), mail.InboundLimits{}, dir)
		if err != nil {
			b.Fatal(err)
		}
		m.Close()
	}
}
