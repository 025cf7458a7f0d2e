package mail

import (
	"bytes"
	"mime"
	"net/mail"
	"reflect"
	"strings"
	"testing"
	"time"

	"steward/internal/fault"
)

// FuzzNormalize: whatever a caller puts in a message, normalize refuses it
// with an invalid fault naming the field, or the message it stores
// renders, through the same build that delivery uses, into one that
// net/mail reads with exactly the expected header fields: no CR, LF or NUL
// in any value, no field injected, the recipient read back as it was
// stored, the subject decoded to itself. Normalising again changes
// nothing.
func FuzzNormalize(f *testing.F) {
	f.Add("ok@example.org", "Hello", "notice", "", "X-Ref", "a-1", "", "", "")
	f.Add("a@example.org\r\nBcc: v@example.org", "Hi\r\nBcc: v@example.org", "notice", "c1", "X-Ref", "a\r\nBcc: v", "a.example\r\nBcc: v", "", "")
	f.Add("ok@example.org", "Ünïcödé =?utf-8?q?fake?= \"quotes\"", "campaign", "spring:2026", "List-Unsubscribe", "<https://a.example/u>, <mailto:u@example.org?subject=x>", "Tëst list <t.site.example>", "", "")
	f.Add("ok@example.org", "x", "notice", "", "List-Id", "Updates <updates.example.org>", "", "https://a.example/u>, <https://evil.example/", "mailto:nobody")
	f.Add("ok@example.org", strings.Repeat("é", 499), "notice", "", "Content-Type", "text/html", "", "https://a.example/u", "u@example.org?subject=stop")
	f.Add("Eve <eve@example.org>", "x\u2028y", "Bad Kind", "a b", "X-Ref: a\r\nBcc", "v", "no-dot", "javascript:alert(1)", "")
	from, _ := mail.ParseAddress("Steward <steward@example.org>")
	o := &Outbox{from: from}
	f.Fuzz(func(t *testing.T, to, subject, kind, campaign, hname, hvalue, listID, unsubURL, unsubMailto string) {
		m := Message{SubjectID: "s_1", To: to, Subject: subject, Text: "Hello.", Kind: kind, CampaignID: campaign, ListID: listID}
		if hname != "" {
			m.Headers = map[string]string{hname: hvalue}
		}
		if unsubURL != "" || unsubMailto != "" {
			m.Unsubscribe = &Unsubscribe{URL: unsubURL, Mailto: unsubMailto}
		}
		got, err := normalize(m)
		if err != nil {
			if fault.CodeOf(err) != fault.Invalid || fault.FieldOf(err) == "" || fault.MessageOf(err) == "" {
				t.Fatalf("normalize: %v, want an invalid fault naming a field", err)
			}
			return
		}
		values := []string{got.To, got.Subject, got.Kind, got.CampaignID, got.ListID}
		for name, v := range got.Headers {
			values = append(values, name, v)
		}
		if got.Unsubscribe != nil {
			values = append(values, got.Unsubscribe.URL, got.Unsubscribe.Mailto)
		}
		for _, v := range values {
			if strings.ContainsAny(v, "\r\n\x00") {
				t.Fatalf("normalize kept %q, which holds CR, LF or NUL", v)
			}
		}
		if a, err := mail.ParseAddress(got.To); err != nil || a.Address != got.To || a.Name != "" {
			t.Fatalf("normalize kept the recipient %q, which net/mail reads as %v, %v", got.To, a, err)
		}
		again, err := normalize(got)
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Fatalf("normalize(%+v) = %+v, then %+v, %v", m, got, again, err)
		}

		msg, err := o.build(Stored{ID: "m1", Message: got, MessageID: "<m1@example.org>", CreatedAt: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)})
		if err != nil {
			t.Fatalf("build(%+v): %v", got, err)
		}
		var raw bytes.Buffer
		if _, err := msg.WriteTo(&raw); err != nil {
			t.Fatalf("write(%+v): %v", got, err)
		}
		head, _, _ := bytes.Cut(raw.Bytes(), []byte("\r\n\r\n"))
		for _, line := range strings.Split(string(head), "\r\n") {
			if strings.ContainsAny(line, "\r\n\x00") || len(line) > 998 {
				t.Fatalf("header line %q of %d bytes", line, len(line))
			}
		}
		parsed, err := mail.ReadMessage(bytes.NewReader(raw.Bytes()))
		if err != nil {
			t.Fatalf("the message of %+v does not parse: %v\n%s", got, err, raw.Bytes())
		}
		want := map[string]bool{"From": true, "To": true, "Subject": true, "Message-Id": true, "Date": true, "Auto-Submitted": true,
			"Mime-Version": true, "Content-Type": true, "Content-Transfer-Encoding": true}
		if got.ListID != "" {
			want["List-Id"] = true
		}
		if got.Unsubscribe != nil {
			want["List-Unsubscribe"] = true
			want["List-Unsubscribe-Post"] = strings.HasPrefix(got.Unsubscribe.URL, "https://")
		}
		if got.CampaignID != "" {
			want["Precedence"] = true
		}
		for name := range got.Headers {
			want[name] = true
		}
		for name, vs := range parsed.Header {
			if !want[name] || len(vs) != 1 {
				t.Fatalf("the message of %+v has %d %s fields, not expected:\n%s", got, len(vs), name, head)
			}
		}
		for name, ok := range want {
			if ok && parsed.Header.Get(name) == "" {
				t.Fatalf("the message of %+v lacks %s:\n%s", got, name, head)
			}
		}
		if a, err := mail.ParseAddress(parsed.Header.Get("To")); err != nil || a.Address != got.To {
			t.Fatalf("To reads back as %v, %v, want %q", a, err, got.To)
		}
		if s, err := new(mime.WordDecoder).DecodeHeader(parsed.Header.Get("Subject")); err != nil || s != got.Subject {
			t.Fatalf("Subject reads back as %q, %v, want %q:\n%s", s, err, got.Subject, head)
		}
	})
}
