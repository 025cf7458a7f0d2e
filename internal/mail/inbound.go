package mail

// Inbound mail: what members send to the support desk. ParseInbound reads
// one raw RFC 5322 message, from the listener (listener.go) or any other
// transport, in a single pass and never whole: the text parts are kept
// (bounded), each attachment is decoded straight into an encrypted spool
// file (door.Spool), and everything the sender could use to exhaust memory
// or disk — size, part count, nesting, archives that unpack to nothing
// good — is refused with a fault whose message can be sent back to the
// sender as it is.

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"os"
	"path"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gabriel-vasile/mimetype"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"

	"steward/internal/door"
	"steward/internal/fault"
)

// Defaults of InboundLimits, and the listener's size limit.
const (
	defaultInboundBytes       = 50 << 20
	defaultInboundParts       = 50
	defaultInboundDepth       = 8
	defaultInboundAttachments = 20
	defaultInboundText        = 1 << 20
)

// Fixed bounds. A header beyond maxInboundHeader is not mail but an
// attack on the parser; a file name beyond maxFileName is shortened. An
// archive may list at most maxZipEntries files (each costs memory to
// list), unpack to at most maxZipUnpacked, and, once it unpacks to more
// than zipRatioFloor, to at most maxZipRatio times its own size: beyond
// these it is a zip bomb for whoever opens it next.
const (
	maxInboundHeader = 256 << 10
	maxFileName      = 200
	maxMessageID     = 250
	maxZipEntries    = 10000
	maxZipUnpacked   = 1 << 30
	maxZipRatio      = 100
	zipRatioFloor    = 1 << 20
)

// InboundLimits bound what ParseInbound accepts. A zero field takes its
// default.
type InboundLimits struct {
	// MaxBytes bounds the raw message, transfer encoding included
	// (default 50 MiB). ParseInbound stops reading one byte past it.
	MaxBytes int64
	// MaxParts bounds the MIME parts, containers included (default 50).
	MaxParts int
	// MaxDepth bounds how deep multipart containers nest (default 8).
	MaxDepth int
	// MaxAttachments bounds the files a message carries (default 20).
	MaxAttachments int
	// MaxTextBytes bounds the text and HTML parts together, decoded from
	// their transfer encoding (default 1 MiB).
	MaxTextBytes int
	// TrustedAuthServ is the authserv-id the relay in front of Steward
	// writes in its Authentication-Results header (RFC 8601). Only the
	// topmost such header is read, and only when its id is this one:
	// anything below it, or a header naming another id, may have been
	// written by the sender. Empty: Inbound.Auth stays empty.
	TrustedAuthServ string
}

func (l InboundLimits) withDefaults() InboundLimits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = defaultInboundBytes
	}
	if l.MaxParts <= 0 {
		l.MaxParts = defaultInboundParts
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = defaultInboundDepth
	}
	if l.MaxAttachments <= 0 {
		l.MaxAttachments = defaultInboundAttachments
	}
	if l.MaxTextBytes <= 0 {
		l.MaxTextBytes = defaultInboundText
	}
	return l
}

// Inbound is one message as the support desk needs it. Every string is
// valid UTF-8 without control characters (Text keeps its line breaks and
// tabs). Close releases the attachments' spool files.
type Inbound struct {
	From      string   // the first address of From, domain lower-cased, no display name
	To        []string // the addresses of the To fields, in order, same form
	Cc        []string // the addresses of the Cc fields
	Subject   string   // RFC 2047 words decoded
	MessageID string   // without angle brackets; "" when absent or malformed
	InReplyTo string   // the first id of In-Reply-To, without angle brackets
	Date      time.Time
	// Text is the message's text: its text/plain parts, or when it has
	// none its HTML parts converted to plain text (tags removed; head,
	// script and style dropped with their content; entities decoded). It
	// is never HTML, but may contain '<' as text: escape it to show it.
	Text        string
	Attachments []InboundFile
	Auth        AuthResults
}

// InboundFile is one attachment, held in an encrypted spool file until
// the Inbound is closed.
type InboundFile struct {
	// Name is the sender's file name without any directory, control or
	// bidirectional-override characters, at most 200 bytes;
	// "attachment" plus an extension for the type when there was none.
	Name string
	// ContentType is detected from the bytes, never taken from the
	// sender's claim: "application/pdf", "text/plain; charset=utf-8".
	ContentType string
	Size        int64
	spool       *door.Spool
}

// Open reads the attachment from its start; each call gives a new reader.
// Reads fail once the Inbound is closed.
func (f InboundFile) Open() (io.Reader, error) {
	if f.spool == nil {
		return nil, errors.New("mail: inbound: the attachment has no content")
	}
	return f.spool.Reader(), nil
}

// Close releases the attachments' spool files. It is safe to call twice.
func (m *Inbound) Close() error {
	var first error
	for i := range m.Attachments {
		if s := m.Attachments[i].spool; s != nil {
			if err := s.Close(); err != nil && first == nil && !errors.Is(err, os.ErrClosed) {
				first = err
			}
		}
	}
	return first
}

// AuthResults are the verdicts of the trusted relay in front: "pass",
// "fail", "softfail", "neutral", "none", "temperror", "permerror" or
// "policy"; "" when no trusted relay reported one.
type AuthResults struct {
	SPF, DKIM, DMARC string
}

// ParseInbound reads one raw message from r and returns what it says,
// or a fault the sender may be told: fault.TooLarge past a limit,
// fault.Invalid for mail that is not valid RFC 5322/MIME (no From, a
// header that cannot be read, a multipart body cut off or without its
// boundary, a damaged encoding), fault.Unsupported for what the desk
// will not take (an unknown transfer encoding or character set, an
// archive holding archives, a zip bomb, an encrypted archive). Any other
// error (a failing reader, a spool that cannot be written) is not the
// sender's fault. It returns a result or an error, never both.
//
// Attachments are spooled in spoolDir ("" for the system's temporary
// directory), encrypted under a key that lives only in memory; the caller
// closes the result. r is read to its end, so that a message over
// MaxBytes is refused even when its excess lies after the last part.
func ParseInbound(r io.Reader, lim InboundLimits, spoolDir string) (*Inbound, error) {
	lim = lim.withDefaults()
	p := &inboundParser{lim: lim, dir: spoolDir, in: &boundedReader{r: r, max: lim.MaxBytes}}
	p.dec = &mime.WordDecoder{CharsetReader: charsetReader}
	msg, err := p.parse()
	if err = p.verdict(err); err != nil {
		for _, f := range p.files {
			f.spool.Close()
		}
		return nil, err
	}
	msg.Attachments = p.files
	return msg, nil
}

type inboundParser struct {
	lim       InboundLimits
	dir       string
	in        *boundedReader
	dec       *mime.WordDecoder
	parts     int
	textBytes int
	plain     []string
	html      []string
	files     []InboundFile
}

// boundedReader refuses to read past max bytes, and past the header limit
// while the header is read, and remembers why it stopped, so that the
// verdict names the cause and not whichever decoder met it first.
type boundedReader struct {
	r          io.Reader
	n, max     int64
	headerMax  int64 // > 0 while the top-level header is read
	over       bool  // past max
	headerOver bool  // past headerMax
	err        error // the underlying reader's own failure
}

var errInboundLimit = errors.New("mail: inbound: limit reached")

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.over || b.headerOver {
		return 0, errInboundLimit
	}
	if room := b.max + 1 - b.n; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	switch {
	case b.n > b.max:
		b.over = true
		return 0, errInboundLimit
	case b.headerMax > 0 && b.n > b.headerMax:
		b.headerOver = true
		return 0, errInboundLimit
	}
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// verdict puts the cause first: a limit or the reader's failure explains
// every error that followed from it.
func (p *inboundParser) verdict(err error) error {
	switch {
	case p.in.over:
		return fault.New(fault.TooLarge, "the message is larger than %s", sizeText(p.lim.MaxBytes))
	case p.in.headerOver:
		return fault.New(fault.TooLarge, "the message header is larger than %s", sizeText(maxInboundHeader))
	case p.in.err != nil:
		var fe *fault.Error
		if errors.As(p.in.err, &fe) {
			return fe
		}
		return fmt.Errorf("mail: inbound: reading the message: %w", p.in.err)
	}
	return err
}

// invalid is a fault for mail that is not valid MIME; a fault already
// raised below (a limit) is kept.
func invalid(err error, reason string) error {
	var fe *fault.Error
	if errors.As(err, &fe) {
		return fe
	}
	return fault.Wrap(fault.Invalid, err, "the message is not valid MIME: %s", reason)
}

func (p *inboundParser) parse() (*Inbound, error) {
	const bufSize = 32 << 10
	br := bufio.NewReaderSize(p.in, bufSize)
	p.in.headerMax = maxInboundHeader + bufSize // the buffer reads ahead into the body
	hdr, err := textproto.NewReader(br).ReadMIMEHeader()
	p.in.headerMax = 0
	if err != nil && !(err == io.EOF && len(hdr) > 0) {
		return nil, invalid(err, "its header cannot be read")
	}
	msg := &Inbound{}
	if err := p.readHeader(hdr, msg); err != nil {
		return nil, err
	}
	if err := p.walk(hdr, br, 0); err != nil {
		return nil, err
	}
	// Whatever follows the last part still counts against MaxBytes.
	if _, err := io.Copy(io.Discard, br); err != nil {
		return nil, err
	}
	switch {
	case len(p.plain) > 0:
		msg.Text = strings.Join(p.plain, "\n\n")
	case len(p.html) > 0:
		msg.Text = htmlToText(strings.Join(p.html, "\n"))
	}
	return msg, nil
}

func (p *inboundParser) readHeader(hdr textproto.MIMEHeader, msg *Inbound) error {
	froms := hdr.Values("From")
	switch {
	case len(froms) == 0:
		return fault.New(fault.Invalid, "the message has no From field")
	case len(froms) > 1:
		return fault.New(fault.Invalid, "the message has more than one From field")
	}
	from := p.addresses(froms[0], true)
	if len(from) == 0 {
		return fault.New(fault.Invalid, "the message's From field is not a valid address")
	}
	msg.From = from[0]
	for _, v := range hdr.Values("To") {
		msg.To = append(msg.To, p.addresses(v, false)...)
	}
	for _, v := range hdr.Values("Cc") {
		msg.Cc = append(msg.Cc, p.addresses(v, false)...)
	}
	if s := hdr.Get("Subject"); s != "" {
		dec, err := p.dec.DecodeHeader(s)
		if err != nil {
			dec = s // a word in a character set not known: keep it as written
		}
		msg.Subject = cleanLine(dec, maxSubject)
	}
	msg.MessageID = messageID(hdr.Get("Message-Id"))
	msg.InReplyTo = messageID(hdr.Get("In-Reply-To"))
	if d, err := mail.ParseDate(hdr.Get("Date")); err == nil {
		msg.Date = d
	}
	msg.Auth = parseAuthResults(hdr.Values("Authentication-Results"), p.lim.TrustedAuthServ)
	return nil
}

// addresses reads an address list. From must parse as a whole; To and Cc
// keep whichever of their comma-separated entries parse, since a reply
// should not be lost to a mangled copy recipient.
func (p *inboundParser) addresses(v string, strict bool) []string {
	ap := mail.AddressParser{WordDecoder: p.dec}
	list, err := ap.ParseList(v)
	if err != nil {
		if strict {
			return nil
		}
		list = nil
		for _, one := range strings.Split(v, ",") {
			if a, err := ap.Parse(one); err == nil {
				list = append(list, a)
			}
		}
	}
	var out []string
	for _, a := range list {
		if s, ok := inboundAddress(a.Address); ok {
			out = append(out, s)
		}
	}
	return out
}

// inboundAddress lower-cases the domain (the local part is the owner's to
// interpret) and refuses what could not be a real address.
func inboundAddress(a string) (string, bool) {
	i := strings.LastIndexByte(a, '@')
	if i <= 0 || i == len(a)-1 {
		return "", false
	}
	a = a[:i+1] + strings.ToLower(a[i+1:])
	if len(a) > maxAddress || !utf8.ValidString(a) || hasControl(a) {
		return "", false
	}
	return a, true
}

// messageID takes the first <id> of a Message-ID or In-Reply-To field.
func messageID(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, '<'); i >= 0 {
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			return ""
		}
		v = v[i+1 : i+j]
	} else if f := strings.Fields(v); len(f) > 0 {
		v = f[0]
	}
	if v == "" || len(v) > maxMessageID || !utf8.ValidString(v) || hasControl(v) || strings.ContainsAny(v, " \t<>") {
		return ""
	}
	return v
}

// cleanLine makes a header value safe to show on one line.
func cleanLine(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == 0x2028 || r == 0x2029 {
			return ' '
		}
		return r
	}, s)
	return truncateUTF8(strings.TrimSpace(s), max)
}

// truncateUTF8 cuts s to at most max bytes without splitting a character.
func truncateUTF8(s string, max int) string {
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max]
}

// walk reads one MIME entity: a container is walked part by part, a text
// part kept, anything else spooled as an attachment. depth is the number
// of multipart containers around it.
func (p *inboundParser) walk(hdr textproto.MIMEHeader, body io.Reader, depth int) error {
	p.parts++
	if p.parts > p.lim.MaxParts {
		return fault.New(fault.TooLarge, "the message has more than %d MIME parts", p.lim.MaxParts)
	}
	mt, params, err := contentType(hdr)
	if err != nil {
		return err
	}
	if strings.HasPrefix(mt, "multipart/") {
		if depth >= p.lim.MaxDepth {
			return fault.New(fault.Invalid, "the message's MIME parts are nested more than %d levels deep", p.lim.MaxDepth)
		}
		boundary := params["boundary"]
		if boundary == "" {
			return fault.New(fault.Invalid, "the message is not valid MIME: a multipart part has no boundary")
		}
		mr := multipart.NewReader(body, boundary)
		for {
			part, err := mr.NextRawPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return invalid(err, "a multipart body is cut off or its boundary is missing")
			}
			if err := p.walk(part.Header, part, depth+1); err != nil {
				return err
			}
		}
	}
	body, err = transferDecoder(hdr, body)
	if err != nil {
		return err
	}
	disp, dparams := "", map[string]string(nil)
	if v := hdr.Get("Content-Disposition"); v != "" {
		disp, dparams, _ = mime.ParseMediaType(v) // unreadable: neither inline nor named
	}
	name := dparams["filename"]
	if name == "" {
		name = params["name"]
	}
	if (mt == "text/plain" || mt == "text/html") && disp != "attachment" && name == "" {
		return p.text(mt, params, body)
	}
	if strings.Contains(name, "=?") { // an RFC 2047 word where RFC 2231 belongs, as many mailers write it
		if dec, err := p.dec.DecodeHeader(name); err == nil {
			name = dec
		}
	}
	return p.attach(name, body)
}

// contentType reads a part's Content-Type; none means text/plain.
// Parameters that cannot be read are dropped (a multipart without its
// boundary is refused by the caller), a type that cannot be read refused.
func contentType(hdr textproto.MIMEHeader) (string, map[string]string, error) {
	v := hdr.Get("Content-Type")
	if strings.TrimSpace(v) == "" {
		return "text/plain", nil, nil
	}
	mt, params, err := mime.ParseMediaType(v)
	if (err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter)) || !strings.Contains(mt, "/") {
		return "", nil, fault.New(fault.Invalid, "the message is not valid MIME: a Content-Type field cannot be read")
	}
	return mt, params, nil
}

// transferDecoder undoes a part's Content-Transfer-Encoding.
func transferDecoder(hdr textproto.MIMEHeader, body io.Reader) (io.Reader, error) {
	switch cte := strings.ToLower(strings.TrimSpace(hdr.Get("Content-Transfer-Encoding"))); cte {
	case "", "7bit", "8bit", "binary":
		return body, nil
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, &spaceDropper{r: body}), nil
	case "quoted-printable":
		return quotedprintable.NewReader(body), nil
	default:
		return nil, fault.New(fault.Unsupported, "the message uses a transfer encoding this desk does not read (%s)", truncateName(cte))
	}
}

// spaceDropper removes the spaces and tabs some mailers leave in base64
// lines (the decoder skips only line breaks).
type spaceDropper struct{ r io.Reader }

func (s *spaceDropper) Read(p []byte) (int, error) {
	for {
		n, err := s.r.Read(p)
		j := 0
		for _, c := range p[:n] {
			if c != ' ' && c != '\t' {
				p[j] = c
				j++
			}
		}
		if j > 0 || err != nil || n == 0 {
			return j, err
		}
	}
}

func (p *inboundParser) text(mt string, params map[string]string, body io.Reader) error {
	room := p.lim.MaxTextBytes - p.textBytes
	b, err := io.ReadAll(io.LimitReader(body, int64(room)+1))
	if err != nil {
		return invalid(err, "a text part is cut off or badly encoded")
	}
	if len(b) > room {
		return fault.New(fault.TooLarge, "the message text is longer than %s", sizeText(int64(p.lim.MaxTextBytes)))
	}
	p.textBytes += len(b)
	s, err := decodeCharset(b, params["charset"])
	if err != nil {
		return err
	}
	if mt == "text/html" {
		p.html = append(p.html, s)
		return nil
	}
	s = cleanText(s)
	if strings.EqualFold(params["format"], "flowed") {
		s = unflow(s, strings.EqualFold(params["delsp"], "yes"))
	}
	if strings.TrimSpace(s) != "" {
		p.plain = append(p.plain, strings.TrimRight(s, " \t\n"))
	}
	return nil
}

// decodeCharset turns a text part into UTF-8. Text said to be ASCII (or
// not labelled) that holds 8-bit bytes is read as Windows Latin-1, what
// such mail nearly always is; an unknown character set is accepted only
// when the bytes are UTF-8 already.
func decodeCharset(b []byte, charset string) (string, error) {
	cs := strings.ToLower(strings.Trim(strings.TrimSpace(charset), `"`))
	switch cs {
	case "", "us-ascii", "ascii", "utf-8", "utf8":
		if utf8.Valid(b) {
			return string(b), nil
		}
		if cs == "utf-8" || cs == "utf8" {
			return strings.ToValidUTF8(string(b), "\uFFFD"), nil
		}
		cs = "windows-1252"
	}
	enc := charsetEncoding(cs)
	if enc == nil {
		if utf8.Valid(b) {
			return string(b), nil
		}
		return "", fault.New(fault.Unsupported, "the message text is in a character set this desk does not read (%s)", truncateName(cs))
	}
	out, err := enc.NewDecoder().Bytes(b)
	if err != nil {
		return "", fault.Wrap(fault.Invalid, err, "the message text is not valid %s", truncateName(cs))
	}
	return strings.ToValidUTF8(string(out), "\uFFFD"), nil
}

// charsetEncoding finds a character set by its MIME or WHATWG label
// (the latter maps iso-8859-1 to windows-1252, as browsers and mail
// readers do); nil when unknown.
func charsetEncoding(name string) encoding.Encoding {
	e, err := htmlindex.Get(name)
	if err != nil || e == nil {
		if e, err = ianaindex.MIME.Encoding(name); err != nil {
			return nil
		}
	}
	if e == nil || e == encoding.Replacement {
		return nil
	}
	return e
}

// charsetReader serves the RFC 2047 decoder the character sets beyond
// the three it knows.
func charsetReader(charset string, input io.Reader) (io.Reader, error) {
	enc := charsetEncoding(strings.ToLower(charset))
	if enc == nil {
		return nil, fmt.Errorf("mail: inbound: unknown character set %q", charset)
	}
	return enc.NewDecoder().Reader(input), nil
}

// cleanText keeps line feeds and tabs and drops every other control
// character; CRLF and lone CR become LF.
func cleanText(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case r == '\r':
			return '\n'
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
			return -1
		}
		return r
	}, s)
}

// unflow joins the soft line breaks of format=flowed text (RFC 3676):
// a line ending in a space continues on the next; space-stuffing is
// undone. The signature separator "-- " stays a line of its own.
func unflow(s string, delsp bool) string {
	lines := strings.Split(s, "\n")
	var b strings.Builder
	b.Grow(len(s))
	for i, l := range lines {
		l = strings.TrimPrefix(l, " ")
		soft := strings.HasSuffix(l, " ") && l != "-- " && i < len(lines)-1
		if soft && delsp {
			l = l[:len(l)-1]
		}
		b.WriteString(l)
		if !soft && i < len(lines)-1 {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func (p *inboundParser) attach(name string, body io.Reader) error {
	if len(p.files) >= p.lim.MaxAttachments {
		return fault.New(fault.TooLarge, "the message has more than %d attachments", p.lim.MaxAttachments)
	}
	sp, err := door.NewSpool(p.dir, &fillReader{r: &mimeReader{r: body}}, p.lim.MaxBytes)
	if err != nil {
		return err
	}
	p.files = append(p.files, InboundFile{Size: sp.Size(), spool: sp})
	f := &p.files[len(p.files)-1]
	mt, err := mimetype.DetectReader(sp.Reader())
	if err != nil {
		return fmt.Errorf("mail: inbound: reading a spooled attachment: %w", err)
	}
	f.ContentType = mt.String()
	if f.Name = sanitizeFileName(name); f.Name == "" {
		f.Name = "attachment" + mt.Extension()
	}
	return CheckArchive(sp, mt)
}

// CheckArchive refuses a spooled file that is a zip-family archive holding
// archives, too many files, too much unpacked, or encryption (checkZip);
// any other file passes. mt is the type its bytes show. Uploads from the
// web go through the same check as mail attachments.
func CheckArchive(sp *door.Spool, mt *mimetype.MIME) error {
	for m := mt; m != nil; m = m.Parent() {
		if m.Is("application/zip") {
			return checkZip(sp)
		}
	}
	return nil
}

// mimeReader turns a decoder's failure into the sender's fault.
type mimeReader struct{ r io.Reader }

func (m *mimeReader) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if err != nil && err != io.EOF {
		err = invalid(err, "an attachment is cut off or badly encoded")
	}
	return n, err
}

// fillReader fills each read as far as the source allows: the decoders
// give a few KiB at a time, and the spool pays for each write it
// encrypts.
type fillReader struct{ r io.Reader }

func (f *fillReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k, err := f.r.Read(p[n:])
		n += k
		if err != nil || k == 0 {
			return n, err
		}
	}
	return n, nil
}

// sanitizeFileName keeps the last element of a path and drops what could
// disguise a name or break whatever shows or stores it: control and
// format characters (the right-to-left override among them), characters
// Windows does not allow, leading and trailing dots and spaces. It keeps
// the extension when it shortens a long name.
func sanitizeFileName(s string) string {
	s = strings.ToValidUTF8(s, "")
	if i := strings.LastIndexAny(s, `/\`); i >= 0 {
		s = s[i+1:]
	}
	s = strings.Map(func(r rune) rune {
		switch {
		case unicode.IsSpace(r):
			return ' '
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r), r == utf8.RuneError:
			return -1
		case strings.ContainsRune(`<>:"|?*`, r):
			return '_'
		}
		return r
	}, s)
	s = strings.Trim(s, ". ")
	if len(s) <= maxFileName {
		return s
	}
	ext := path.Ext(s)
	if len(ext) > 16 {
		ext = ""
	}
	return strings.TrimRight(truncateUTF8(s[:len(s)-len(ext)], maxFileName-len(ext)), ". ") + ext
}

// checkZip refuses an archive that holds archives, that lists too many
// files, that declares it unpacks to too much, or that is encrypted. It
// reads the central directory and the first bytes of each entry, never a
// whole entry.
func checkZip(sp *door.Spool) error {
	size := sp.Size()
	n, err := zipEntryCount(sp, size)
	if err != nil {
		return fault.Wrap(fault.Invalid, err, "an attachment is a damaged zip archive")
	}
	if n > maxZipEntries {
		return fault.New(fault.Unsupported, "an attachment is an archive of more than %d files", maxZipEntries)
	}
	zr, err := zip.NewReader(sp, size)
	if err != nil {
		return fault.Wrap(fault.Invalid, err, "an attachment is a damaged zip archive")
	}
	var total uint64
	for _, f := range zr.File {
		total += f.UncompressedSize64
		if total > maxZipUnpacked || total < f.UncompressedSize64 {
			return fault.New(fault.TooLarge, "an attachment is an archive that would unpack to more than %s", sizeText(maxZipUnpacked))
		}
	}
	if total > zipRatioFloor && total > maxZipRatio*uint64(size) {
		return fault.New(fault.Unsupported, "an attachment is an archive that would unpack to more than %d times its size", maxZipRatio)
	}
	head := make([]byte, 512)
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/") {
			continue
		}
		if f.Flags&0x1 != 0 {
			return fault.New(fault.Unsupported, "an attachment is an encrypted archive, which cannot be checked")
		}
		rc, err := f.Open()
		if err != nil {
			return fault.Wrap(fault.Unsupported, err, "an attachment is an archive this desk cannot check")
		}
		k, err := io.ReadFull(rc, head)
		rc.Close()
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return fault.Wrap(fault.Invalid, err, "an attachment is a damaged zip archive")
		}
		if (archiveName(f.Name) || archiveMagic(head[:k])) && !officeDocument(f.Name, head[:k]) {
			return fault.New(fault.Unsupported, "an attachment is an archive holding other archives (a zip of zips)")
		}
	}
	return nil
}

// zipEntryCount reads the number of entries from the end of central
// directory record (or its ZIP64 form) before archive/zip lists them all,
// which costs memory per entry.
func zipEntryCount(r io.ReaderAt, size int64) (uint64, error) {
	const eocdLen, locatorLen, zip64Len = 22, 20, 56
	tailLen := min(size, 65535+eocdLen)
	tail := make([]byte, tailLen)
	if _, err := r.ReadAt(tail, size-tailLen); err != nil && err != io.EOF {
		return 0, err
	}
	i := bytes.LastIndex(tail, []byte("PK\x05\x06"))
	if i < 0 || len(tail)-i < eocdLen {
		return 0, errors.New("no end of central directory")
	}
	eocd := tail[i:]
	n := uint64(binary.LittleEndian.Uint16(eocd[10:]))
	if n != 0xffff && binary.LittleEndian.Uint32(eocd[16:]) != 0xffffffff {
		return n, nil
	}
	if i < locatorLen || string(tail[i-locatorLen:i-locatorLen+4]) != "PK\x06\x07" {
		return n, nil
	}
	off := binary.LittleEndian.Uint64(tail[i-locatorLen+8:])
	if off > uint64(size) {
		return 0, errors.New("bad zip64 locator")
	}
	rec := make([]byte, zip64Len)
	if _, err := r.ReadAt(rec, int64(off)); err != nil || string(rec[:4]) != "PK\x06\x06" {
		return 0, errors.New("bad zip64 directory record")
	}
	return binary.LittleEndian.Uint64(rec[32:]), nil
}

var archiveExts = map[string]bool{
	".zip": true, ".gz": true, ".tgz": true, ".7z": true, ".rar": true, ".tar": true,
	".bz2": true, ".tbz2": true, ".xz": true, ".txz": true, ".zst": true, ".lz": true,
	".lzma": true, ".cab": true, ".arj": true,
}

func archiveName(name string) bool { return archiveExts[strings.ToLower(path.Ext(name))] }

// archiveMagic recognises an archive or compressed stream by its first
// bytes.
func archiveMagic(h []byte) bool {
	for _, m := range []string{
		"PK\x03\x04", "PK\x05\x06", "PK\x07\x08", // zip
		"\x1f\x8b",                 // gzip
		"7z\xbc\xaf\x27\x1c",       // 7-Zip
		"Rar!\x1a\x07",             // RAR
		"BZh",                      // bzip2
		"\xfd7zXZ\x00",             // xz
		"\x28\xb5\x2f\xfd",         // zstd
		"LZIP", "MSCF", "\x60\xea", // lzip, cabinet, arj
	} {
		if bytes.HasPrefix(h, []byte(m)) {
			return true
		}
	}
	return len(h) >= 262 && string(h[257:262]) == "ustar" // tar
}

var officeExts = map[string]bool{
	".docx": true, ".docm": true, ".dotx": true, ".xlsx": true, ".xlsm": true, ".xltx": true,
	".pptx": true, ".pptm": true, ".potx": true, ".ppsx": true, ".vsdx": true,
	".odt": true, ".ods": true, ".odp": true, ".odg": true, ".ott": true, ".ots": true, ".otp": true,
}

// officeDocument reports an Office Open XML or OpenDocument file: zips
// too, but documents, as often sent zipped and as often embedded in one
// another (a chart's workbook inside a report). It takes both the name
// and the name of the first entry, which such files always begin with.
func officeDocument(name string, h []byte) bool {
	if !officeExts[strings.ToLower(path.Ext(name))] || len(h) < 30 || string(h[:4]) != "PK\x03\x04" {
		return false
	}
	n := int(binary.LittleEndian.Uint16(h[26:]))
	if 30+n > len(h) {
		return false
	}
	first := string(h[30 : 30+n])
	if first == "[Content_Types].xml" || first == "mimetype" {
		return true
	}
	for _, dir := range []string{"_rels/", "docProps/", "word/", "xl/", "ppt/", "visio/", "customXml/"} {
		if strings.HasPrefix(first, dir) {
			return true
		}
	}
	return false
}

// sizeText writes a byte count as the limits are set: "50 MiB".
func sizeText(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// parseAuthResults reads the topmost Authentication-Results field
// (RFC 8601) when the trusted relay wrote it. Of several DKIM results,
// one pass is enough: a message may carry several signatures.
func parseAuthResults(fields []string, trusted string) AuthResults {
	var ar AuthResults
	if trusted == "" || len(fields) == 0 {
		return ar
	}
	items := splitUnquoted(stripComments(fields[0]), ';')
	id := strings.Fields(items[0])
	if len(id) == 0 || !strings.EqualFold(strings.Trim(id[0], `"`), trusted) {
		return ar
	}
	for _, item := range items[1:] {
		method, rest, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			continue
		}
		method, _, _ = strings.Cut(strings.ToLower(strings.TrimSpace(method)), "/")
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		result := strings.ToLower(f[0])
		switch result {
		case "pass", "fail", "softfail", "neutral", "none", "temperror", "permerror", "policy":
		default:
			continue
		}
		switch method {
		case "spf":
			if ar.SPF == "" {
				ar.SPF = result
			}
		case "dkim":
			if ar.DKIM == "" || result == "pass" {
				ar.DKIM = result
			}
		case "dmarc":
			if ar.DMARC == "" {
				ar.DMARC = result
			}
		}
	}
	return ar
}

// stripComments removes RFC 5322 comments, nested ones included, outside
// quoted strings.
func stripComments(s string) string {
	var b strings.Builder
	depth, quoted, escaped := 0, false, false
	for _, r := range s {
		switch {
		case escaped:
			escaped = false
		case r == '\\' && (quoted || depth > 0):
			escaped = true
		case quoted:
			if r == '"' {
				quoted = false
			}
		case r == '(':
			depth++
			continue
		case r == ')' && depth > 0:
			depth--
			continue
		case depth == 0 && r == '"':
			quoted = true
		}
		if depth == 0 {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// splitUnquoted splits s at sep outside quoted strings.
func splitUnquoted(s string, sep rune) []string {
	var out []string
	start, quoted, escaped := 0, false, false
	for i, r := range s {
		switch {
		case escaped:
			escaped = false
		case r == '\\' && quoted:
			escaped = true
		case r == '"':
			quoted = !quoted
		case r == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// htmlLines start and end a line of text, htmlParagraphs a paragraph.
var (
	htmlLines = map[atom.Atom]bool{
		atom.Div: true, atom.Tr: true, atom.Dd: true, atom.Dt: true, atom.Address: true,
		atom.Center: true, atom.Section: true, atom.Article: true, atom.Header: true, atom.Footer: true,
	}
	htmlParagraphs = map[atom.Atom]bool{
		atom.P: true, atom.Table: true, atom.Ul: true, atom.Ol: true, atom.Dl: true, atom.Pre: true,
		atom.H1: true, atom.H2: true, atom.H3: true, atom.H4: true, atom.H5: true, atom.H6: true,
		atom.Blockquote: true, atom.Hr: true,
	}
)

// htmlDropped hide their whole content.
var htmlDropped = map[atom.Atom]bool{
	atom.Script: true, atom.Style: true, atom.Title: true, atom.Template: true, atom.Svg: true,
}

// htmlHead may stand in a document's head; any other start tag, or text,
// ends a head left open, as it does in a browser.
var htmlHead = map[atom.Atom]bool{
	atom.Meta: true, atom.Link: true, atom.Base: true, atom.Title: true, atom.Style: true,
	atom.Script: true, atom.Noscript: true, atom.Template: true,
}

// htmlToText renders HTML as plain text: the text of the document's body,
// entities decoded, a line break for each block, a link's address after
// its text when it is a web or mail address the text does not show.
func htmlToText(src string) string {
	z := html.NewTokenizer(strings.NewReader(src))
	var b strings.Builder
	var dropped atom.Atom // inside a dropped element
	inHead := false
	href, linkStart := "", 0
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return tidyText(b.String())
		case html.TextToken:
			text := z.Text()
			if inHead && dropped == 0 && len(bytes.TrimSpace(text)) > 0 {
				inHead = false
			}
			if dropped == 0 && !inHead {
				writeCollapsed(&b, string(text))
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			a := atom.Lookup(name)
			if dropped != 0 {
				continue
			}
			if inHead && !htmlHead[a] {
				inHead = false
			}
			switch {
			case a == atom.Head:
				inHead = true
			case htmlDropped[a]:
				dropped = a
			case a == atom.Br:
				b.WriteByte('\n')
			case a == atom.Li:
				b.WriteString("\n- ")
			case a == atom.Td || a == atom.Th:
				b.WriteByte(' ')
			case a == atom.A && hasAttr && !inHead:
				href, linkStart = linkTarget(z), b.Len()
			default:
				blockBreak(&b, a)
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			switch {
			case dropped != 0:
				if a == dropped {
					dropped = 0
				}
			case a == atom.Head:
				inHead = false
			case a == atom.A && href != "":
				if !strings.Contains(b.String()[linkStart:], strings.TrimPrefix(href, "mailto:")) {
					b.WriteString(" (" + href + ")")
				}
				href = ""
			default:
				blockBreak(&b, a)
			}
		}
	}
}

// linkTarget returns an anchor's href when it is an http, https or mailto
// address fit to show.
func linkTarget(z *html.Tokenizer) string {
	for {
		k, v, more := z.TagAttr()
		if string(k) == "href" {
			h := strings.TrimSpace(string(v))
			l := strings.ToLower(h)
			if (strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://") || strings.HasPrefix(l, "mailto:")) &&
				len(h) <= 2048 && utf8.ValidString(h) && !strings.ContainsFunc(h, unicode.IsSpace) && !hasControl(h) {
				return h
			}
			return ""
		}
		if !more {
			return ""
		}
	}
}

// blockBreak ends the current line at the edge of a block, and leaves an
// empty line at the edge of a paragraph; never more than that, however
// deep blocks nest.
func blockBreak(b *strings.Builder, a atom.Atom) {
	want := 0
	switch {
	case htmlParagraphs[a]:
		want = 2
	case htmlLines[a]:
		want = 1
	}
	s := strings.TrimRight(b.String(), " ")
	have := len(s) - len(strings.TrimRight(s, "\n"))
	if len(s) == 0 {
		return
	}
	for ; have < want; have++ {
		b.WriteByte('\n')
	}
}

// writeCollapsed writes text with each run of white space as one space,
// as a browser lays it out.
func writeCollapsed(b *strings.Builder, s string) {
	space := b.Len() > 0 && isHTMLSpace(rune(b.String()[b.Len()-1]))
	for _, r := range s {
		if isHTMLSpace(r) || r == 0xa0 {
			if !space {
				b.WriteByte(' ')
				space = true
			}
			continue
		}
		b.WriteRune(r)
		space = false
	}
}

func isHTMLSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f'
}

// tidyText trims each line, keeps at most one empty line in a row and
// drops control characters.
func tidyText(s string) string {
	s = cleanText(s)
	var b strings.Builder
	blank := false
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			blank = true
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
			if blank {
				b.WriteByte('\n')
			}
		}
		blank = false
		b.WriteString(l)
	}
	return b.String()
}
