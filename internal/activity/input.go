package activity

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"steward/internal/fault"
)

// MaxBody bounds a collect request body. The tracker's largest event (a
// custom event with its properties) is well under 2 KiB.
const MaxBody = 8 << 10

// Event types the collect endpoint accepts. Engagement carries the time
// spent on a page (sent when the page is hidden); it is not a view.
const (
	TypePageview   = "pageview"
	TypeSearch     = "search"
	TypeOutbound   = "outbound"
	TypeDownload   = "download"
	TypeEvent      = "event"
	TypeEngagement = "engagement"
)

// typeField is the policy field an event type records: a type whose field
// the policy does not declare is refused.
var typeField = map[string]string{
	TypePageview:   FieldPage,
	TypeSearch:     FieldSearchTerms,
	TypeOutbound:   FieldOutboundLink,
	TypeDownload:   FieldAssetInteraction,
	TypeEvent:      FieldEvent,
	TypeEngagement: FieldViewTime,
}

// Screen width classes the tracker sends instead of a width, so the exact
// screen size (a fingerprinting signal) never leaves the browser.
var screenClasses = map[string]bool{"phone": true, "tablet": true, "laptop": true, "desktop": true, "wide": true}

// Bounds of the accepted values.
const (
	maxURL        = 2048
	maxPath       = 512
	maxSearch     = 200
	maxName       = 64
	maxProps      = 20
	maxPropKey    = 40
	maxPropValue  = 200
	maxDurationMS = 24 * 60 * 60 * 1000
	clockSkew     = 5 * time.Minute
)

// Input is the body of POST /api/v1/collect as the tracker sends it.
type Input struct {
	Site       string                     `json:"site"`
	Type       string                     `json:"type"`
	URL        string                     `json:"url"`
	Referrer   string                     `json:"referrer,omitempty"`
	Search     string                     `json:"search,omitempty"`
	DurationMS *int64                     `json:"duration_ms,omitempty"`
	Name       string                     `json:"name,omitempty"`
	Target     string                     `json:"target,omitempty"`
	Screen     string                     `json:"screen,omitempty"`
	Props      map[string]json.RawMessage `json:"props,omitempty"`
	// TS is the client's clock in milliseconds since the epoch. Events are
	// recorded at the server's time; TS only lets us refuse events from a
	// badly wrong clock or a replay.
	TS *int64 `json:"ts,omitempty"`
}

// ParseInput decodes a collect body: JSON (sent as application/json or, by
// sendBeacon, text/plain), valid UTF-8, no unknown fields, no trailing
// data, at most MaxBody bytes. Errors are fault.Invalid or fault.TooLarge.
func ParseInput(body []byte) (Input, error) {
	var in Input
	if len(body) > MaxBody {
		return in, fault.New(fault.TooLarge, "the event is larger than %d bytes", MaxBody)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return in, fault.New(fault.Invalid, "the body is empty; send a JSON event")
	}
	if !utf8.Valid(body) {
		return in, fault.New(fault.Invalid, "the body is not valid UTF-8")
	}
	if in, ok := parseInputFast(body); ok {
		return in, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return in, decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return in, fault.New(fault.Invalid, "the body holds data after the JSON event")
	}
	return in, nil
}

// parseInputFast decodes the shape the tracker sends in one pass, with no
// reflection and no copy of the body: an object whose keys are Input's
// JSON names exactly (each at most once, props excepted), whose values are
// strings without escapes or control characters and plain integers
// (duration_ms, ts), with JSON whitespace around them and nothing after
// the object. ok is false for anything else, and ParseInput then decodes
// with encoding/json, which gives the same Input for what this accepts and
// the precise error for what it refuses (TestParseInputFast compares the
// two). The body is valid UTF-8 already, which is what lets strings be
// copied as they are. The JSON decoder took some 14 µs per event under
// load, a tenth of the collect handler.
func parseInputFast(b []byte) (in Input, ok bool) {
	i := skipJSONSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return in, false
	}
	i = skipJSONSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return in, skipJSONSpace(b, i+1) == len(b)
	}
	var seen uint16
	for {
		key, j, ok := plainJSONString(b, i)
		if !ok {
			return in, false
		}
		i = skipJSONSpace(b, j)
		if i >= len(b) || b[i] != ':' {
			return in, false
		}
		i = skipJSONSpace(b, i+1)
		var bit uint16
		var str *string
		var num **int64
		switch string(key) {
		case "site":
			bit, str = 1<<0, &in.Site
		case "type":
			bit, str = 1<<1, &in.Type
		case "url":
			bit, str = 1<<2, &in.URL
		case "referrer":
			bit, str = 1<<3, &in.Referrer
		case "search":
			bit, str = 1<<4, &in.Search
		case "name":
			bit, str = 1<<5, &in.Name
		case "target":
			bit, str = 1<<6, &in.Target
		case "screen":
			bit, str = 1<<7, &in.Screen
		case "duration_ms":
			bit, num = 1<<8, &in.DurationMS
		case "ts":
			bit, num = 1<<9, &in.TS
		default:
			return in, false // props, an unknown field, another spelling
		}
		if seen&bit != 0 {
			return in, false // a repeated key: the decoder's rules apply
		}
		seen |= bit
		if str != nil {
			v, j, ok := plainJSONString(b, i)
			if !ok {
				return in, false
			}
			*str, i = string(v), j
		} else {
			v, j, ok := plainJSONInt(b, i)
			if !ok {
				return in, false
			}
			*num, i = &v, j
		}
		i = skipJSONSpace(b, i)
		if i >= len(b) {
			return in, false
		}
		switch b[i] {
		case ',':
			i = skipJSONSpace(b, i+1)
			continue
		case '}':
			return in, skipJSONSpace(b, i+1) == len(b)
		}
		return in, false
	}
}

// skipJSONSpace returns the index of the first byte at or after i that is
// not JSON whitespace.
func skipJSONSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// plainJSONString reads the string starting at b[i] when it holds no
// escape and no control character, returning its contents and the index
// after its closing quote.
func plainJSONString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// plainJSONInt reads a JSON integer (no fraction, no exponent, at most 18
// digits so it cannot overflow) starting at b[i].
func plainJSONInt(b []byte, i int) (int64, int, bool) {
	neg := i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	start := i
	var n int64
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		n = n*10 + int64(b[i]-'0')
		i++
	}
	digits := i - start
	if digits == 0 || digits > 18 || (digits > 1 && b[start] == '0') {
		return 0, 0, false
	}
	if i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E') {
		return 0, 0, false
	}
	if neg {
		n = -n
	}
	return n, i, true
}

func decodeError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fault.Wrap(fault.Invalid, err, "the body is not valid JSON (at byte %d)", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return &fault.Error{Code: fault.Invalid, Field: typ.Field, Message: fmt.Sprintf("%s must be %s", typ.Field, fault.JSONKind(typ.Type)), Err: err}
		}
		return fault.Wrap(fault.Invalid, err, "the event must be a JSON object")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &fault.Error{Code: fault.Invalid, Field: name, Message: fmt.Sprintf("unknown field %q", name)}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fault.New(fault.Invalid, "the body ends before the JSON event does")
	}
	return fault.Wrap(fault.Invalid, err, "the body is not a valid event")
}

// normalize validates in against the site and the policy and turns it into
// the event to store, without visitor, location or device (the collector
// adds those). Every stored string is bounded and scrubbed.
func (c *Collector) normalize(in Input, site Site, now time.Time) (Event, error) {
	ev := Event{Site: site.ID, At: now, Type: in.Type}
	field, ok := typeField[in.Type]
	if !ok {
		return ev, fault.FieldError("type", "type must be one of pageview, search, outbound, download, event, engagement")
	}
	if !c.cfg.Fields[field] {
		return ev, fault.FieldError("type", "this site's privacy policy does not record %s events", in.Type)
	}
	if in.TS != nil {
		ts := time.UnixMilli(*in.TS)
		if ts.After(now.Add(clockSkew)) {
			return ev, fault.FieldError("ts", "the timestamp is in the future")
		}
		if ts.Before(now.Add(-clockSkew)) {
			return ev, fault.FieldError("ts", "the timestamp is more than 5 minutes old")
		}
	}
	page, err := c.page(in.URL, site)
	if err != nil {
		return ev, err
	}
	if c.cfg.Fields[FieldPage] {
		ev.Page, ev.Query = page.page, page.query
		if in.Type == TypePageview {
			ev.Campaign = page.campaign
		}
	}
	if c.cfg.Fields[FieldSearchTerms] && in.Type == TypePageview {
		ev.Search = page.search
	}
	if in.Referrer != "" {
		ref, err := c.referrer(in.Referrer)
		if err != nil {
			return ev, err
		}
		// A referrer on the page's own host is navigation inside the site,
		// not a source.
		if c.cfg.Fields[FieldReferrer] && !strings.EqualFold(ref.host, page.host) && in.Type == TypePageview {
			ev.Referrer = ref.norm
		}
	}
	if in.Screen != "" {
		if !screenClasses[in.Screen] {
			return ev, fault.FieldError("screen", "screen must be one of phone, tablet, laptop, desktop, wide")
		}
		if c.cfg.Fields[FieldScreen] && in.Type == TypePageview {
			ev.Screen = in.Screen
		}
	}
	if in.DurationMS != nil && in.Type != TypeEngagement {
		return ev, fault.FieldError("duration_ms", "duration_ms is only accepted with type engagement")
	}
	if len(in.Props) > 0 && in.Type != TypeEvent {
		return ev, fault.FieldError("props", "props are only accepted with type event")
	}
	if in.Target != "" && in.Type != TypeOutbound && in.Type != TypeDownload {
		return ev, fault.FieldError("target", "target is only accepted with types outbound and download")
	}
	if in.Name != "" && in.Type != TypeEvent {
		return ev, fault.FieldError("name", "name is only accepted with type event")
	}
	if in.Search != "" && in.Type != TypeSearch {
		return ev, fault.FieldError("search", "search is only accepted with type search; page URLs carry their own search terms")
	}
	switch in.Type {
	case TypeSearch:
		ev.Search = normalizeSearch(in.Search)
		if ev.Search == "" {
			return ev, fault.FieldError("search", "search needs the terms searched for")
		}
	case TypeOutbound, TypeDownload:
		target, err := parseURL("target", in.Target, true)
		if err != nil {
			return ev, err
		}
		t := strings.ToLower(target.Scheme) + "://" + strings.ToLower(target.Host) + pathOf(target)
		if in.Type == TypeOutbound {
			ev.Link = t
		} else {
			ev.Asset = t
		}
	case TypeEvent:
		name := clean(in.Name, 1000)
		if name == "" || len(name) > maxName {
			return ev, fault.FieldError("name", "name must be 1 to %d characters", maxName)
		}
		ev.Name = Scrub(name)
		props, err := normalizeProps(in.Props)
		if err != nil {
			return ev, err
		}
		ev.Props = props
	case TypeEngagement:
		if in.DurationMS == nil || *in.DurationMS <= 0 || *in.DurationMS > maxDurationMS {
			return ev, fault.FieldError("duration_ms", "duration_ms must be between 1 and %d", maxDurationMS)
		}
		ev.DurationMS = *in.DurationMS
	}
	return ev, nil
}

// page normalises a page URL and checks it is on one of the site's
// origins, or takes what it normalised to before. Only what the policy
// records is computed and kept; a URL on no origin of the site, or longer
// than maxCachedURL, is not kept.
func (c *Collector) page(raw string, site Site) (pageParts, error) {
	k := c.pages.key(raw)
	p, ok := c.pages.get(k)
	if !ok {
		u, err := parseURL("url", raw, true)
		if err != nil {
			return pageParts{}, err
		}
		p = pageParts{origin: strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host), host: u.Host}
		var query url.Values
		if u.RawQuery != "" {
			query = u.Query()
		}
		if c.cfg.Fields[FieldPage] {
			p.page = pathOf(u)
			p.query = keptQuery(query, c.cfg.SearchParam)
			p.campaign = clean(Scrub(query.Get("utm_campaign")), 100)
		}
		if c.cfg.Fields[FieldSearchTerms] {
			p.search = normalizeSearch(query.Get(c.cfg.SearchParam))
		}
	}
	if len(site.Origins) > 0 && !site.allows(p.origin) {
		return pageParts{}, fault.FieldError("url", "the page is not on an origin of site %s", site.ID)
	}
	if !ok && len(raw) <= maxCachedURL {
		c.pages.put(k, p)
	}
	return p, nil
}

// referrer normalises a referrer URL, or takes what it normalised to
// before. When the policy records no referrer, it is only validated and
// nothing of it is kept.
func (c *Collector) referrer(raw string) (refParts, error) {
	if !c.cfg.Fields[FieldReferrer] {
		_, err := parseURL("referrer", raw, false)
		return refParts{}, err
	}
	k := c.refs.key(raw)
	if r, ok := c.refs.get(k); ok {
		return r, nil
	}
	u, err := parseURL("referrer", raw, false)
	if err != nil {
		return refParts{}, err
	}
	r := refParts{host: u.Host, norm: strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host) + pathOf(u)}
	if len(raw) <= maxCachedURL {
		c.refs.put(k, r)
	}
	return r, nil
}

// parseURL parses an absolute URL with a host, bounded in length. Only
// http(s) is accepted where required (pages and link targets); referrers
// may come from apps (android-app://).
func parseURL(field, raw string, httpOnly bool) (*url.URL, error) {
	if raw == "" {
		return nil, fault.FieldError(field, "%s is required", field)
	}
	if len(raw) > maxURL {
		return nil, &fault.Error{Code: fault.Invalid, Field: field, Message: fmt.Sprintf("%s is longer than %d bytes", field, maxURL)}
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] < 0x20 || raw[i] == 0x7f {
			return nil, fault.FieldError(field, "%s holds control characters", field)
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return nil, fault.FieldError(field, "%s must be an absolute URL", field)
	}
	scheme := strings.ToLower(u.Scheme)
	if httpOnly && scheme != "http" && scheme != "https" {
		return nil, fault.FieldError(field, "%s must be an http or https URL", field)
	}
	// Credentials in a URL are never stored, whatever the field.
	u.User = nil
	return u, nil
}

// pathOf returns the scrubbed, bounded path of u ("/" when empty).
func pathOf(u *url.URL) string {
	p := u.Path
	if !utf8.ValidString(p) {
		p = u.EscapedPath()
	}
	if p == "" {
		p = "/"
	}
	return truncate(Scrub(clean(p, maxPath*2)), maxPath)
}

// keptQuery keeps only campaign parameters (utm_*) from a page URL's
// query, scrubbed and in a canonical order. The search parameter is
// stored apart, as search terms.
func keptQuery(q url.Values, searchParam string) string {
	var keys []string
	for k := range q {
		if strings.HasPrefix(k, "utm_") && k != searchParam && len(k) <= 20 {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return ""
	}
	sort.Strings(keys)
	kept := url.Values{}
	for _, k := range keys {
		if v := clean(Scrub(q.Get(k)), 100); v != "" {
			kept.Set(k, v)
		}
	}
	return truncate(kept.Encode(), maxPath)
}

// normalizeSearch lower-cases, scrubs and bounds search terms, so reports
// group "Privacy" and "privacy ".
func normalizeSearch(s string) string {
	return truncate(Scrub(clean(strings.ToLower(s), maxSearch*2)), maxSearch)
}

// normalizeProps validates custom event properties: a flat object of at
// most maxProps string, number or boolean values. It returns them as
// canonical JSON (sorted keys), scrubbed.
func normalizeProps(props map[string]json.RawMessage) (string, error) {
	if len(props) == 0 {
		return "", nil
	}
	if len(props) > maxProps {
		return "", fault.FieldError("props", "at most %d properties are accepted", maxProps)
	}
	out := make(map[string]any, len(props))
	for k, raw := range props {
		key := clean(k, 1000)
		if key == "" || len(key) > maxPropKey || key != k {
			return "", fault.FieldError("props", "property names must be 1 to %d printable characters", maxPropKey)
		}
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 {
			return "", fault.FieldError("props", "property %q has no value", k)
		}
		switch raw[0] {
		case '{', '[':
			return "", fault.FieldError("props", "property %q must be a string, number or boolean, not nested", k)
		case '"':
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return "", fault.FieldError("props", "property %q is not a valid string", k)
			}
			s = clean(s, 1000)
			if len(s) > maxPropValue {
				return "", fault.FieldError("props", "property %q is longer than %d bytes", k, maxPropValue)
			}
			out[key] = Scrub(s)
		case 't', 'f':
			var b bool
			if err := json.Unmarshal(raw, &b); err != nil {
				return "", fault.FieldError("props", "property %q is not a valid boolean", k)
			}
			out[key] = b
		case 'n':
			continue // null: the property is absent
		default:
			var n json.Number
			if err := json.Unmarshal(raw, &n); err != nil {
				return "", fault.FieldError("props", "property %q is not a valid number", k)
			}
			if _, err := n.Float64(); err != nil || len(n) > 32 {
				return "", fault.FieldError("props", "property %q is not a valid number", k)
			}
			out[key] = n
		}
	}
	b, err := json.Marshal(out) // map keys are sorted: the encoding is canonical
	if err != nil {
		return "", fault.Wrap(fault.Invalid, err, "props could not be encoded")
	}
	return string(b), nil
}
