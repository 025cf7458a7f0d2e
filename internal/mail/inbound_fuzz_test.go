package mail_test

import (
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"steward/internal/fault"
	"steward/internal/mail"
)

// FuzzParseInbound: whatever arrives, ParseInbound never panics, returns
// a result or an error and never both, refuses only with a fault the
// sender may be told (never an internal error: the reader and the spool
// do not fail here), and what it returns is clean: valid UTF-8, no
// control characters in header values, file names without a path, within
// the limits, every attachment readable to its stated size.
func FuzzParseInbound(f *testing.F) {
	zips := []byte(withFiles("a.zip", "application/zip", zipOf(f, zipEntry{"b.zip", zipOf(f, zipEntry{"c.txt", []byte("c")})})))
	for _, seed := range []string{
		msgPlain, msgAlternative, msgHTMLOnly, msgSubject2047, msgLatin1, msgWindows1252, msgFlowed,
		msgForgedAuth, msgNoFrom, msgBadHeader, msgBrokenBoundary, msgNoBoundary, nested(3), nested(9),
		withFiles("photo.txt", "text/plain", pngBytes(f), "../x.pdf", "application/pdf", pdfBytes),
		withFiles("docs.zip", "application/zip", zipOf(f, zipEntry{"report.xlsx", docx(f)})),
		string(zips),
	} {
		f.Add([]byte(seed))
	}
	lim := mail.InboundLimits{MaxBytes: 256 << 10, MaxParts: 20, MaxDepth: 5, MaxAttachments: 5, MaxTextBytes: 64 << 10, TrustedAuthServ: "mx.desk.example"}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := mail.ParseInbound(strings.NewReader(string(raw)), lim, dir)
		if (m == nil) == (err == nil) {
			t.Fatalf("result %v and error %v: want exactly one", m, err)
		}
		if err != nil {
			if fault.CodeOf(err) == fault.Internal {
				t.Fatalf("refused with an internal error: %v", err)
			}
			return
		}
		defer m.Close()
		for _, v := range append([]string{m.From, m.Subject, m.MessageID, m.InReplyTo}, append(m.To, m.Cc...)...) {
			if !utf8.ValidString(v) || strings.ContainsAny(v, "\r\n\x00") {
				t.Fatalf("header value %q is not one clean line", v)
			}
		}
		if m.From == "" || !strings.Contains(m.From, "@") {
			t.Fatalf("From %q", m.From)
		}
		if !utf8.ValidString(m.Text) || strings.ContainsAny(m.Text, "\r\x00") || len(m.Text) > 4*lim.MaxTextBytes {
			t.Fatalf("Text is not clean or too long (%d bytes)", len(m.Text))
		}
		if len(m.Attachments) > lim.MaxAttachments {
			t.Fatalf("%d attachments", len(m.Attachments))
		}
		for _, a := range m.Attachments {
			if a.Name == "" || len(a.Name) > 200 || strings.ContainsAny(a.Name, "/\\\x00\r\n") || !utf8.ValidString(a.Name) || a.ContentType == "" {
				t.Fatalf("attachment name %q, type %q", a.Name, a.ContentType)
			}
			r, err := a.Open()
			if err != nil {
				t.Fatal(err)
			}
			if n, err := io.Copy(io.Discard, r); err != nil || n != a.Size {
				t.Fatalf("attachment reads %d bytes (%v), says %d", n, err, a.Size)
			}
		}
	})
}
