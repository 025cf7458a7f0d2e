package disclosure

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"steward/internal/audit"
	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/jobs"
	"steward/internal/store"
)

// Delivery statuses.
const (
	StatusPending      = "pending"
	StatusDelivered    = "delivered"
	StatusAcknowledged = "acknowledged"
	StatusFailed       = "failed"
	StatusManual       = "manual"
)

// Tolerance is how far a signed message's timestamp may be from the clock
// (Standard Webhooks recommends five minutes).
const Tolerance = 5 * time.Minute

// decodeSecret reads a signing secret as Standard Webhooks writes it
// ("whsec_" and base64), or as raw bytes otherwise.
func decodeSecret(s string) []byte {
	if rest, ok := strings.CutPrefix(s, "whsec_"); ok {
		if b, err := base64.StdEncoding.DecodeString(rest); err == nil && len(b) > 0 {
			return b
		}
	}
	return []byte(s)
}

// Sign returns the Standard Webhooks signature of a message:
// "v1," and the base64 HMAC-SHA256 of "id.timestamp.body" under secret.
func Sign(secret []byte, id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Verify checks a Standard Webhooks signature header (one or more
// space-separated "v1,…" entries) and the timestamp's distance from now.
func Verify(secret []byte, id, tsHeader, sigHeader string, body []byte, now time.Time) error {
	if id == "" || tsHeader == "" || sigHeader == "" {
		return fault.New(fault.Unauthorized, "the webhook-id, webhook-timestamp and webhook-signature headers are required")
	}
	ts, err := strconv.ParseInt(tsHeader, 10, 64)
	if err != nil {
		return fault.New(fault.Unauthorized, "webhook-timestamp is not a number of seconds")
	}
	if d := now.Sub(time.Unix(ts, 0)); d > Tolerance || d < -Tolerance {
		return fault.New(fault.Unauthorized, "webhook-timestamp is too far from the current time")
	}
	want := []byte(Sign(secret, id, ts, body))
	for _, sig := range strings.Fields(sigHeader) {
		if subtle.ConstantTimeCompare([]byte(sig), want) == 1 {
			return nil
		}
	}
	return fault.New(fault.Unauthorized, "the signature does not match")
}

// newClient is the webhook client: no redirect is followed (a 3xx is a
// failed attempt), and unless allowPrivate, no connection is made to a
// loopback, private, link-local or otherwise non-public address, checked
// on the address actually dialled so a name resolving there is refused
// too.
func newClient(timeout time.Duration, allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: timeout}
	if !allowPrivate {
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return err
			}
			if !public(ap.Addr()) {
				return fmt.Errorf("disclosure: %s is not a public address", ap.Addr())
			}
			return nil
		}
	}
	tr := &http.Transport{DialContext: dialer.DialContext, TLSHandshakeTimeout: timeout, ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost: 2, IdleConnTimeout: 90 * time.Second, ForceAttemptHTTP2: true}
	return &http.Client{Transport: tr, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// nonPublic lists the special-purpose ranges (IANA's IPv4 and IPv6
// special-purpose registries) that the netip predicates in public do not
// cover and a webhook must not reach without the operator's leave: some
// are local networks by another name (shared CGN space, NAT64 and 6to4
// and Teredo, which carry an IPv4 address inside, possibly a private
// one), the rest are never a recipient's server.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // shared address space (carrier-grade NAT)
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation (TEST-NET-1)
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation (TEST-NET-2)
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation (TEST-NET-3)
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and the broadcast address
	netip.MustParsePrefix("::/8"),            // reserved: IPv4-compatible and -translated addresses
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001::/32"),       // Teredo
	netip.MustParsePrefix("2001:2::/48"),     // benchmarking
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("2002::/16"),       // 6to4
	netip.MustParsePrefix("fc00::/7"),        // unique local
	netip.MustParsePrefix("fec0::/10"),       // site-local (deprecated)
}

// public reports whether an address may be reached without the operator's
// leave. An IPv4-mapped IPv6 address is judged as the IPv4 one it maps.
func public(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsGlobalUnicast() || a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// delivery is one row of disclosure_deliveries.
type delivery struct {
	id, recipient, event, subject, category, status, body string
	sealed                                                []byte
	attempts                                              int
	purpose                                               string
}

func (s *Service) loadDelivery(ctx context.Context, q store.Q, id string) (delivery, error) {
	var d delivery
	var subj, body, purpose sql.NullString
	err := q.QueryRowContext(ctx, `SELECT x.id, x.recipient_id, x.event_type, x.subject_id, x.seal_category, x.status, x.body, x.body_sealed,
		x.attempts, d.purpose FROM disclosure_deliveries x LEFT JOIN disclosures d ON d.id = x.disclosure_id WHERE x.id = $1`, id).
		Scan(&d.id, &d.recipient, &d.event, &subj, &d.category, &d.status, &body, &d.sealed, &d.attempts, &purpose)
	if errors.Is(err, sql.ErrNoRows) {
		return d, fault.New(fault.NotFound, "no such delivery")
	}
	if err != nil {
		return d, errorf("load delivery: %w", err)
	}
	d.subject, d.body, d.purpose = subj.String, body.String, purpose.String
	return d, nil
}

// open returns the delivery's body: a rights event's as stored, a
// disclosure's opened through the door for the disclosure's purpose (an
// erasure or restriction since the disclosure refuses it).
func (s *Service) open(ctx context.Context, d delivery) ([]byte, error) {
	if d.sealed == nil {
		if d.body == "" {
			return nil, errGone
		}
		return []byte(d.body), nil
	}
	if d.subject == "" {
		return nil, errGone
	}
	v, err := s.d.Door.Subject(ctx, s.d.DB, door.System(d.purpose), d.subject)
	if err != nil {
		if fault.Is(err, fault.NotFound) {
			return nil, errGone
		}
		return nil, err
	}
	b, err := v.OpenCategory(ctx, d.category, d.sealed)
	if errors.Is(err, door.ErrShredded) {
		return nil, errGone
	}
	if _, denied := door.IsDenied(err); denied {
		return nil, fmt.Errorf("%w: %w", errGone, err)
	}
	return b, err
}

// errGone: what a delivery would carry can no longer be sent (erased, or
// its use refused since it was queued).
var errGone = errors.New("disclosure: the data to deliver is gone or may no longer be used")

// deliver is the job that sends one delivery to its recipient's webhook.
// It is at least once: the same event id on every attempt, the receiver
// drops repeats.
func (s *Service) deliver(ctx context.Context, j jobs.Job) error {
	var p deliverJob
	if err := j.Decode(&p); err != nil {
		return jobs.Permanent(err)
	}
	d, err := s.loadDelivery(ctx, s.d.DB, p.Delivery)
	if fault.Is(err, fault.NotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if d.status != StatusPending {
		return nil
	}
	rc := s.recipients[d.recipient]
	if rc == nil || !rc.webhook() {
		return s.finish(ctx, d, StatusManual, 0, "not sent: the recipient has no webhook with a signing secret; tell it by hand")
	}
	body, err := s.open(ctx, d)
	if errors.Is(err, errGone) {
		return s.finish(ctx, d, StatusFailed, 0, "not sent: the data was erased or its use refused before delivery")
	}
	if err != nil {
		return err
	}
	code, sendErr := s.post(ctx, rc, d.id, body)
	if sendErr == nil {
		return s.finish(ctx, d, StatusDelivered, code, "")
	}
	msg := clip(sendErr.Error(), 200)
	if j.LastAttempt() {
		return s.finish(ctx, d, StatusFailed, code, msg)
	}
	if err := s.logAttempt(ctx, s.d.DB, d.id, code, msg); err != nil {
		return err
	}
	return sendErr
}

// post sends one signed attempt and returns the HTTP status (0 when none
// came) and an error unless the endpoint answered 2xx.
func (s *Service) post(ctx context.Context, rc *recipient, id string, body []byte) (int, error) {
	ts := s.d.Clock.Now().Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rc.Webhook.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Steward-Webhooks/1")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", Sign(rc.secret, id, ts, body))
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is the policy's, but keep the message short
		}
		return 0, fmt.Errorf("disclosure: post to %s: %w", rc.ID, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("disclosure: %s answered %d", rc.ID, resp.StatusCode)
	}
	return resp.StatusCode, nil
}

// finish records a delivery's last attempt and its new status, and
// empties the sealed body: once delivered (or given up) no copy of the
// data stays here.
func (s *Service) finish(ctx context.Context, d delivery, status string, code int, msg string) error {
	return s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		now := s.d.Clock.Now().UTC()
		var delivered any
		if status == StatusDelivered {
			delivered = now
		}
		res, err := tx.ExecContext(ctx, `UPDATE disclosure_deliveries SET status = $2, body_sealed = NULL, last_error = $3,
			delivered_at = COALESCE(delivered_at, $4), attempts = attempts + $5 WHERE id = $1 AND status IN ('pending', 'delivered')`,
			d.id, status, msg, delivered, boolInt(code != 0 || msg != ""))
		if err != nil {
			return errorf("finish delivery: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		if code != 0 || msg != "" {
			if err := s.logAttempt(ctx, tx, d.id, code, msg); err != nil {
				return err
			}
		}
		return s.d.Audit.Record(ctx, tx, audit.Event{Actor: "system", Action: "disclosure.delivery_" + status, Subject: d.subject,
			Detail: map[string]string{"delivery": d.id, "recipient": d.recipient, "event": d.event, "status_code": strconv.Itoa(code)}})
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// logAttempt appends one attempt to the delivery log. A failed attempt
// that is retried counts here and in the delivery's attempts.
func (s *Service) logAttempt(ctx context.Context, q store.Q, id string, code int, msg string) error {
	_, err := q.ExecContext(ctx, `INSERT INTO disclosure_attempts (delivery_id, attempt, at, status_code, error)
		VALUES ($1, (SELECT COUNT(*) + 1 FROM disclosure_attempts WHERE delivery_id = $1), $2, $3, $4)`,
		id, s.d.Clock.Now().UTC(), code, msg)
	if err != nil {
		return errorf("log attempt: %w", err)
	}
	if msg != "" {
		_, err = q.ExecContext(ctx, `UPDATE disclosure_deliveries SET attempts = attempts + 1, last_error = $2 WHERE id = $1 AND status = 'pending'`, id, msg)
	}
	return err
}

// Delivery is a delivery as staff and recipients see it.
type Delivery struct {
	ID             string    `json:"id"`
	Recipient      string    `json:"recipient"`
	Event          string    `json:"event"`
	Disclosure     string    `json:"disclosure,omitempty"`
	RightsRequest  string    `json:"rights_request,omitempty"`
	Status         string    `json:"status"`
	Attempts       int       `json:"attempts"`
	LastError      string    `json:"last_error,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	DeliveredAt    time.Time `json:"delivered_at,omitzero"`
	AcknowledgedAt time.Time `json:"acknowledged_at,omitzero"`
	HandledBy      string    `json:"handled_by,omitempty"`
	Log            []Attempt `json:"log,omitempty"`
}

// Attempt is one entry of the delivery log.
type Attempt struct {
	At         time.Time `json:"at"`
	StatusCode int       `json:"status_code"`
	Error      string    `json:"error,omitempty"`
}

const deliveryCols = `id, recipient_id, event_type, COALESCE(disclosure_id, ''), COALESCE(rights_request_id, ''), status, attempts, last_error,
	created_at, delivered_at, acknowledged_at, handled_by`

func scanDeliveries(rows *sql.Rows) ([]Delivery, error) {
	defer rows.Close()
	out := []Delivery{}
	for rows.Next() {
		var d Delivery
		var del, ack sql.NullTime
		if err := rows.Scan(&d.ID, &d.Recipient, &d.Event, &d.Disclosure, &d.RightsRequest, &d.Status, &d.Attempts, &d.LastError,
			&d.CreatedAt, &del, &ack, &d.HandledBy); err != nil {
			return nil, errorf("scan delivery: %w", err)
		}
		d.CreatedAt = d.CreatedAt.UTC()
		if del.Valid {
			d.DeliveredAt = del.Time.UTC()
		}
		if ack.Valid {
			d.AcknowledgedAt = ack.Time.UTC()
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Deliveries lists a recipient's deliveries ("" for all), newest first,
// optionally of one status.
func (s *Service) Deliveries(ctx context.Context, recipientID, status string, limit int) ([]Delivery, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	rows, err := s.d.DB.QueryContext(ctx, `SELECT `+deliveryCols+` FROM disclosure_deliveries
		WHERE ($1 = '' OR recipient_id = $1) AND ($2 = '' OR status = $2) ORDER BY created_at DESC, id LIMIT `+strconv.Itoa(limit), recipientID, status)
	if err != nil {
		return nil, errorf("deliveries: %w", err)
	}
	return scanDeliveries(rows)
}

// GetDelivery returns one delivery with its log.
func (s *Service) GetDelivery(ctx context.Context, id string) (Delivery, error) {
	rows, err := s.d.DB.QueryContext(ctx, `SELECT `+deliveryCols+` FROM disclosure_deliveries WHERE id = $1`, id)
	if err != nil {
		return Delivery{}, errorf("delivery: %w", err)
	}
	ds, err := scanDeliveries(rows)
	if err != nil {
		return Delivery{}, err
	}
	if len(ds) == 0 {
		return Delivery{}, fault.New(fault.NotFound, "no such delivery")
	}
	d := ds[0]
	lr, err := s.d.DB.QueryContext(ctx, `SELECT at, status_code, error FROM disclosure_attempts WHERE delivery_id = $1 ORDER BY attempt`, id)
	if err != nil {
		return Delivery{}, errorf("delivery log: %w", err)
	}
	defer lr.Close()
	for lr.Next() {
		var a Attempt
		if err := lr.Scan(&a.At, &a.StatusCode, &a.Error); err != nil {
			return Delivery{}, errorf("delivery log: %w", err)
		}
		a.At = a.At.UTC()
		d.Log = append(d.Log, a)
	}
	return d, lr.Err()
}

// Ack is a recipient's acknowledgement: the event ids it has acted on.
type Ack struct {
	Events []string `json:"events"`
}

// Acknowledge records a recipient's signed acknowledgement: a message
// signed like the webhooks it received (Standard Webhooks, its own
// secret), whose id was never used before (a replay is refused) and
// whose timestamp is within Tolerance. It returns the events
// acknowledged; ids not delivered to this recipient are refused.
func (s *Service) Acknowledge(ctx context.Context, recipientID, msgID, ts, sig string, body []byte) ([]string, error) {
	rc := s.recipients[recipientID]
	if rc == nil || !rc.webhook() {
		return nil, s.refuseAck(ctx, recipientID, "unknown_recipient", fault.New(fault.Unauthorized, "the signature does not match"))
	}
	if err := Verify(rc.secret, msgID, ts, sig, body, s.d.Clock.Now()); err != nil {
		return nil, s.refuseAck(ctx, recipientID, "bad_signature", err)
	}
	ack, err := parseAck(body)
	if err != nil {
		return nil, err
	}
	return s.acknowledge(ctx, rc, "signed:"+clip(msgID, 128), ack.Events)
}

// AcknowledgeWithKey records an acknowledgement of a recipient that pulls,
// authenticated by its API key.
func (s *Service) AcknowledgeWithKey(ctx context.Context, recipientID, key string, body []byte) ([]string, error) {
	rc, err := s.pullAuth(ctx, recipientID, key)
	if err != nil {
		return nil, err
	}
	ack, err := parseAck(body)
	if err != nil {
		return nil, err
	}
	return s.acknowledge(ctx, rc, "", ack.Events)
}

func (s *Service) refuseAck(ctx context.Context, recipientID, reason string, err error) error {
	if aerr := s.d.Audit.Record(ctx, s.d.DB, audit.Event{Actor: "recipient:" + clip(recipientID, 64), Action: "disclosure.ack_refused",
		Detail: map[string]string{"reason": reason}}); aerr != nil {
		return errors.Join(err, aerr)
	}
	return err
}

func (s *Service) acknowledge(ctx context.Context, rc *recipient, msgID string, events []string) ([]string, error) {
	var done []string
	err := s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		now := s.d.Clock.Now().UTC()
		if msgID != "" {
			if _, err := tx.ExecContext(ctx, `INSERT INTO disclosure_acks (recipient_id, message_id, received_at) VALUES ($1, $2, $3)`,
				rc.ID, msgID, now); err != nil {
				if store.IsUniqueViolation(err) {
					return fault.New(fault.Conflict, "this acknowledgement was already received (a replay)")
				}
				return errorf("record ack: %w", err)
			}
		}
		for _, id := range events {
			res, err := tx.ExecContext(ctx, `UPDATE disclosure_deliveries SET status = 'acknowledged', acknowledged_at = $3, body_sealed = NULL
				WHERE id = $1 AND recipient_id = $2 AND status IN ('pending', 'delivered')`, id, rc.ID, now)
			if err != nil {
				return errorf("ack: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				var st string
				err := tx.QueryRowContext(ctx, `SELECT status FROM disclosure_deliveries WHERE id = $1 AND recipient_id = $2`, id, rc.ID).Scan(&st)
				if errors.Is(err, sql.ErrNoRows) {
					return fault.FieldError("events", "no event %q was delivered to this recipient", clip(id, 64))
				}
				if err != nil {
					return errorf("ack: %w", err)
				}
				continue // already acknowledged: acknowledging twice is harmless
			}
			done = append(done, id)
		}
		return s.d.Audit.Record(ctx, tx, audit.Event{Actor: "recipient:" + rc.ID, Action: "disclosure.acknowledged",
			Detail: map[string]string{"events": jsonList(done)}})
	})
	if err != nil {
		if fault.Is(err, fault.Conflict) {
			return nil, s.refuseAck(ctx, rc.ID, "replay", err)
		}
		return nil, err
	}
	if done == nil {
		done = []string{}
	}
	return done, nil
}
