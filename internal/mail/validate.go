package mail

import (
	"mime"
	"net/mail"
	"net/textproto"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"steward/internal/fault"
)

// Limits. RFC 5322 caps a line at 998 bytes; header values stay below it
// with their field name, and bodies are bounded so one message cannot fill
// the outbox.
const (
	maxSubject     = 998
	maxHeaderValue = 900
	maxHeaders     = 20
	maxText        = 1 << 20
	maxHTML        = 2 << 20
	maxAddress     = 254
	maxURL         = 900
)

var (
	kindRE      = regexp.MustCompile(`^[a-z][a-z0-9-]{0,63}$`)
	purposeRE   = kindRE // policy ids are lower-case words joined by hyphens
	subjectIDRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
	campaignRE  = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,100}$`)
	fieldNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,75}$`)
	// RFC 2919 list-id: a dot-atom with at least two labels.
	listIDRE = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)+$")
)

// reservedHeaders are set by the outbox itself or describe the message's
// structure and addresses; a caller may not set them.
var reservedHeaders = map[string]bool{
	"From": true, "To": true, "Cc": true, "Bcc": true, "Sender": true, "Reply-To": true,
	"Subject": true, "Date": true, "Message-Id": true, "Mime-Version": true,
	"Return-Path": true, "Received": true, "Dkim-Signature": true, "Auto-Submitted": true,
	"Resent-From": true, "Resent-To": true, "Resent-Cc": true, "Resent-Bcc": true, "Resent-Sender": true,
	"Disposition-Notification-To": true, "List-Unsubscribe-Post": true,
	"User-Agent": true, "X-Mailer": true,
}

// hasControl reports control characters, including the Unicode line and
// paragraph separators and NEL that some software treats as line breaks.
func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == 0x2028 || r == 0x2029 {
			return true
		}
	}
	return false
}

// checkLine validates a value that goes into a header field.
func checkLine(field, v string, maxLen int) error {
	switch {
	case !utf8.ValidString(v):
		return fault.FieldError(field, "must be valid UTF-8")
	case hasControl(v):
		return fault.FieldError(field, "must not contain line breaks or control characters")
	case len(v) > maxLen:
		return fault.FieldError(field, "must be at most %d bytes", maxLen)
	}
	return nil
}

func checkBody(field, v string, maxLen int) error {
	switch {
	case !utf8.ValidString(v):
		return fault.FieldError(field, "must be valid UTF-8")
	case strings.ContainsRune(v, 0):
		return fault.FieldError(field, "must not contain NUL characters")
	case len(v) > maxLen:
		return fault.FieldError(field, "must be at most %d bytes", maxLen)
	}
	return nil
}

// checkAddress accepts one bare address (no display name, no comments),
// exactly as net/mail reads it back.
func checkAddress(field, v string) error {
	if err := checkLine(field, v, maxAddress); err != nil {
		return err
	}
	a, err := mail.ParseAddress(v)
	if err != nil || a.Name != "" || a.Address != v || strings.ContainsAny(v, " <>\"(),;[]\\") {
		return fault.FieldError(field, "must be one plain email address such as name@example.org")
	}
	return nil
}

// normalize validates m and returns it in the form that is stored.
func normalize(m Message) (Message, error) { return normalizeWith(m, nil) }

// batchMemo holds values of the previous message of a batch that passed
// validation: a campaign's messages share their subject line, kind,
// campaign and list, so each is checked once per batch, not per message.
type batchMemo struct {
	valid                            bool
	subject, kind, purpose, campaign string
	listIn, listOut                  string
}

// normalizeWith is normalize remembering, in memo (nil: none), what it
// has checked already.
func normalizeWith(m Message, memo *batchMemo) (Message, error) {
	var seen batchMemo // nothing seen: every value is checked
	if memo != nil {
		seen = *memo
	}
	if !subjectIDRE.MatchString(m.SubjectID) {
		return m, fault.FieldError("subject_id", "must be a subject id")
	}
	if err := checkAddress("to", m.To); err != nil {
		return m, err
	}
	if !seen.valid || m.Subject != seen.subject {
		if strings.TrimSpace(m.Subject) == "" {
			return m, fault.FieldError("subject", "is required")
		}
		if err := checkLine("subject", m.Subject, maxSubject); err != nil {
			return m, err
		}
	}
	if strings.TrimSpace(m.Text) == "" {
		return m, fault.FieldError("text", "is required")
	}
	if err := checkBody("text", m.Text, maxText); err != nil {
		return m, err
	}
	if err := checkBody("html", m.HTML, maxHTML); err != nil {
		return m, err
	}
	if (!seen.valid || m.Kind != seen.kind) && !kindRE.MatchString(m.Kind) {
		return m, fault.FieldError("kind", "must be a lower-case word such as verification")
	}
	if (!seen.valid || m.Purpose != seen.purpose) && !purposeRE.MatchString(m.Purpose) {
		return m, fault.FieldError("purpose", "must name the policy purpose the mail serves, such as security")
	}
	if m.CampaignID != "" && (!seen.valid || m.CampaignID != seen.campaign) && !campaignRE.MatchString(m.CampaignID) {
		return m, fault.FieldError("campaign_id", "must be letters, digits and . _ : - only")
	}
	if m.Unsubscribe != nil {
		u := *m.Unsubscribe
		m.Unsubscribe = &u
	}
	headers := map[string]string{}
	if len(m.Headers) > maxHeaders {
		return m, fault.FieldError("headers", "at most %d extra headers", maxHeaders)
	}
	names := make([]string, 0, len(m.Headers))
	for name := range m.Headers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		value := m.Headers[name]
		if !fieldNameRE.MatchString(name) {
			return m, fault.FieldError("headers", "header name %q is not a valid field name", truncateName(name))
		}
		canon := textproto.CanonicalMIMEHeaderKey(name)
		field := "headers." + canon
		if _, dup := headers[canon]; dup {
			return m, fault.FieldError(field, "is given twice")
		}
		if err := checkLine(field, value, maxHeaderValue); err != nil {
			return m, err
		}
		if strings.TrimSpace(value) == "" {
			return m, fault.FieldError(field, "must not be empty")
		}
		switch {
		case canon == "List-Unsubscribe":
			if m.Unsubscribe != nil {
				return m, fault.FieldError(field, "is given twice: use Unsubscribe only")
			}
			u, err := parseListUnsubscribe(value)
			if err != nil {
				return m, err
			}
			m.Unsubscribe = u
			continue
		case canon == "List-Id":
			if m.ListID != "" {
				return m, fault.FieldError(field, "is given twice: use ListID only")
			}
			m.ListID = value
			continue
		case reservedHeaders[canon] || strings.HasPrefix(canon, "Content-"):
			return m, fault.FieldError(field, "is set by Steward and cannot be given")
		}
		headers[canon] = value
	}
	if m.ReplyTo != "" {
		// Kept among the headers as stored; only this field sets it, as one
		// checked address.
		if err := checkAddress("reply_to", m.ReplyTo); err != nil {
			return m, err
		}
		headers["Reply-To"], m.ReplyTo = m.ReplyTo, ""
	}
	m.Headers = headers
	if len(headers) == 0 {
		m.Headers = nil
	}
	listIn := m.ListID
	if seen.valid && listIn == seen.listIn {
		m.ListID = seen.listOut
	} else if m.ListID != "" {
		id, err := normalizeListID(m.ListID)
		if err != nil {
			return m, err
		}
		m.ListID = id
	}
	if m.Unsubscribe != nil {
		if err := normalizeUnsubscribe(m.Unsubscribe); err != nil {
			return m, err
		}
	}
	if memo != nil {
		*memo = batchMemo{valid: true, subject: m.Subject, kind: m.Kind, purpose: m.Purpose, campaign: m.CampaignID, listIn: listIn, listOut: m.ListID}
	}
	return m, nil
}

func truncateName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// normalizeListID accepts "list.example.org", "<list.example.org>" or
// "Description <list.example.org>" and returns the last two forms.
func normalizeListID(v string) (string, error) {
	const field = "list_id"
	if err := checkLine(field, v, 300); err != nil {
		return "", err
	}
	phrase, id := "", strings.TrimSpace(v)
	if i := strings.IndexByte(id, '<'); i >= 0 {
		if !strings.HasSuffix(id, ">") {
			return "", fault.FieldError(field, "must end with the list id in angle brackets")
		}
		phrase, id = strings.TrimSpace(id[:i]), id[i+1:len(id)-1]
	}
	if !listIDRE.MatchString(id) || len(id) > 255 {
		return "", fault.FieldError(field, "must be a list id such as updates.example.org")
	}
	if strings.ContainsAny(phrase, "\"\\<>") {
		return "", fault.FieldError(field, "description must not contain quotes, backslashes or angle brackets")
	}
	if phrase == "" {
		return "<" + id + ">", nil
	}
	return phrase + " <" + id + ">", nil
}

// listIDHeader renders a stored list id as a List-Id field value, quoting
// or encoding the description.
func listIDHeader(stored string) string {
	i := strings.LastIndexByte(stored, '<')
	if i <= 0 {
		return stored
	}
	phrase := strings.TrimSpace(stored[:i])
	for _, r := range phrase {
		if r >= utf8.RuneSelf {
			return mime.QEncoding.Encode("utf-8", phrase) + " " + stored[i:]
		}
	}
	return `"` + phrase + `" ` + stored[i:]
}

// parseListUnsubscribe reads "<https://…>, <mailto:…>" as given in a
// header into an Unsubscribe.
func parseListUnsubscribe(v string) (*Unsubscribe, error) {
	const field = "headers.List-Unsubscribe"
	u := &Unsubscribe{}
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if !strings.HasPrefix(part, "<") || !strings.HasSuffix(part, ">") {
			return nil, fault.FieldError(field, "must be a list of <URI> separated by commas")
		}
		uri := part[1 : len(part)-1]
		switch {
		case strings.HasPrefix(strings.ToLower(uri), "mailto:") && u.Mailto == "":
			u.Mailto = uri
		case strings.HasPrefix(strings.ToLower(uri), "http") && u.URL == "":
			u.URL = uri
		default:
			return nil, fault.FieldError(field, "must hold at most one http(s) and one mailto URI")
		}
	}
	return u, nil
}

// normalizeUnsubscribe checks the URL and mailto of an Unsubscribe and
// gives the mailto its scheme. Neither may contain anything that could end
// the <…> it is written in.
func normalizeUnsubscribe(u *Unsubscribe) error {
	if u.URL == "" && u.Mailto == "" {
		return fault.FieldError("unsubscribe", "needs a URL or a mailto address")
	}
	if u.URL != "" {
		if err := checkURI("unsubscribe.url", u.URL); err != nil {
			return err
		}
		p, err := url.Parse(u.URL)
		if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" || p.User != nil {
			return fault.FieldError("unsubscribe.url", "must be an absolute https URL")
		}
	}
	if u.Mailto != "" {
		if err := checkURI("unsubscribe.mailto", u.Mailto); err != nil {
			return err
		}
		m := u.Mailto
		if len(m) >= 7 && strings.EqualFold(m[:7], "mailto:") {
			m = m[7:]
		}
		addr, query, _ := strings.Cut(m, "?")
		if err := checkAddress("unsubscribe.mailto", addr); err != nil {
			return err
		}
		if _, err := url.ParseQuery(query); err != nil {
			return fault.FieldError("unsubscribe.mailto", "has a malformed query")
		}
		u.Mailto = "mailto:" + m
	}
	return nil
}

// checkURI allows printable ASCII without the characters that delimit
// URIs in List-Unsubscribe (RFC 2369).
func checkURI(field, v string) error {
	if len(v) > maxURL {
		return fault.FieldError(field, "must be at most %d bytes", maxURL)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == '"' || c == ',' {
			return fault.FieldError(field, "must be printable ASCII without spaces, quotes, commas or angle brackets (percent-encode them)")
		}
	}
	return nil
}
