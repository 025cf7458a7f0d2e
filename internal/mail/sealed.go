package mail

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/store"
)

// What the outbox stores of a message is personal data of its subject: the
// address (the policy's email field) and what the message says (the mail
// field: subject line, bodies, headers, and the unsubscribe methods, whose
// links carry tokens). Each value is sealed through the door under the
// subject's key of its field's category, for the purpose the mail serves,
// and opened the same way: at delivery for that purpose, on the staff
// screen for a staff role that holds it, in the privacy centre for the
// subject themself. Destroying the subject's keys (erasure) leaves only
// ciphertext of their mail in every copy of the database.

// The policy fields the outbox stores.
const (
	fieldAddress = "email"
	fieldMail    = "mail"
)

// sealed is a message's personal values as stored.
type sealed struct {
	to, subject, text, html, headers, unsubURL, unsubMailto door.Sealed
}

// seal seals m for the view's subject and use.
func seal(ctx context.Context, v *door.View, m Message) (sealed, error) {
	var s sealed
	var err error
	if s.to, err = v.Seal(ctx, fieldAddress, m.To); err != nil {
		return sealed{}, err
	}
	var headers, url, mailto string
	if len(m.Headers) > 0 {
		b, err := json.Marshal(m.Headers)
		if err != nil {
			return sealed{}, fmt.Errorf("encode headers: %w", err)
		}
		headers = string(b)
	}
	if m.Unsubscribe != nil {
		url, mailto = m.Unsubscribe.URL, m.Unsubscribe.Mailto
	}
	for _, f := range []struct {
		dst   *door.Sealed
		value string
	}{{&s.subject, m.Subject}, {&s.text, m.Text}, {&s.html, m.HTML}, {&s.headers, headers}, {&s.unsubURL, url}, {&s.unsubMailto, mailto}} {
		if *f.dst, err = v.Seal(ctx, fieldMail, f.value); err != nil {
			return sealed{}, err
		}
	}
	return s, nil
}

// categories are the categories of what the outbox stores, under the
// policy in force.
func (o *Outbox) categories() []string {
	var out []string
	for _, f := range []string{fieldAddress, fieldMail} {
		if c, err := o.door.CategoryOf(f); err == nil {
			out = append(out, c)
		}
	}
	return out
}

// sealFor seals m for the view's subject. When the subject's key for the
// address was destroyed (an erased member) it answers door.ErrShredded:
// nothing of the mail is stored. When only the key of the mail field's own
// category was (the member erased the mail Steward had sent them), the key
// is made anew: new mail is new data, as a new export after an erasure is.
func (o *Outbox) sealFor(ctx context.Context, q store.Q, v *door.View, m Message) (sealed, error) {
	s, err := seal(ctx, v, m)
	if !errors.Is(err, door.ErrShredded) {
		return s, err
	}
	addrCat, cerr := o.door.CategoryOf(fieldAddress)
	if cerr != nil {
		return sealed{}, cerr
	}
	mailCat, cerr := o.door.CategoryOf(fieldMail)
	if cerr != nil || mailCat == addrCat {
		return sealed{}, err
	}
	if gone, serr := o.door.Shredded(ctx, q, v.ID(), addrCat); serr != nil || gone {
		return sealed{}, err
	}
	if err := o.door.Revive(ctx, q, v.ID(), mailCat); err != nil {
		return sealed{}, err
	}
	fresh, err := o.door.Subject(ctx, q, v.Use(), v.ID())
	if err != nil {
		return sealed{}, err
	}
	return seal(ctx, fresh, m)
}

// record is a stored message as read from its row: its delivery state in
// the clear, what it says still sealed.
type record struct {
	Stored
	sealed
}

const recordColumns = `id, subject_id, kind, purpose, list_id, campaign_id, message_id, status, attempts, last_error, created_at, sent_at,
	to_addr_sealed, subject_sealed, body_text_sealed, body_html_sealed, headers_sealed, unsubscribe_url_sealed, unsubscribe_mailto_sealed`

func scanRecord(row interface{ Scan(...any) error }) (record, error) {
	var r record
	var sent sql.NullTime
	if err := row.Scan(&r.ID, &r.SubjectID, &r.Kind, &r.Purpose, &r.ListID, &r.CampaignID, &r.MessageID, &r.Status, &r.Attempts,
		&r.LastError, &r.CreatedAt, &sent, &r.to, &r.subject, &r.text, &r.html, &r.headers, &r.unsubURL, &r.unsubMailto); err != nil {
		return record{}, err
	}
	r.CreatedAt = r.CreatedAt.UTC()
	if sent.Valid {
		t := sent.Time.UTC()
		r.SentAt = &t
	}
	return r, nil
}

// open returns the message of r with what it says opened through v.
func open(ctx context.Context, v *door.View, r record) (Stored, error) {
	s := r.Stored
	var err error
	if s.To, err = v.Open(ctx, fieldAddress, r.to); err != nil {
		return Stored{}, err
	}
	var headers, url, mailto string
	for _, f := range []struct {
		dst *string
		src door.Sealed
	}{{&s.Subject, r.subject}, {&s.Text, r.text}, {&s.HTML, r.html}, {&headers, r.headers}, {&url, r.unsubURL}, {&mailto, r.unsubMailto}} {
		if *f.dst, err = v.Open(ctx, fieldMail, f.src); err != nil {
			return Stored{}, err
		}
	}
	if headers != "" {
		if json.Unmarshal([]byte(headers), &s.Headers) != nil {
			// Only Enqueue writes it, as JSON: the value was altered.
			return Stored{}, fmt.Errorf("mail: headers of %s: %w", s.ID, door.ErrCorrupt)
		}
	}
	if url != "" || mailto != "" {
		s.Unsubscribe = &Unsubscribe{URL: url, Mailto: mailto}
	}
	return s, nil
}

// Reader says who reads stored mail: given a message's purpose, the use of
// the door the message is opened for.
type Reader func(purpose string) door.Use

// AsStaff reads as a staff member acting in a role: each message for its
// own purpose, which the policy's staff section must let the role name. A
// message whose purpose the role lacks is withheld, and the refusal
// audited.
func AsStaff(staffID, role string) Reader {
	return func(purpose string) door.Use { return door.Staff(staffID, role, purpose) }
}

// AsRecipient reads each message as the person it went to reads their own
// mail: their own request (subject-request), whatever the mail was for.
func AsRecipient(string) door.Use { return door.Subject() }

// Withheld reasons that are not the door's.
const (
	withheldErased  = "erased"
	withheldUnknown = "unknown subject"
	// A value that does not open with its subject's key: sealed under a key
	// destroyed and made anew since, or altered.
	withheldCorrupt = "does not open with its subject's key"
)

// openAll opens records for a reader: one door batch per purpose, so the
// states and keys of a page of messages load in a few queries. A message
// the reader may not see is returned withheld, with the reason. Hot marks
// a list, whose refusals are audited once a minute per kind.
func (o *Outbox) openAll(ctx context.Context, q store.Q, r Reader, recs []record, hot bool) ([]Stored, error) {
	out := make([]Stored, len(recs))
	byPurpose := map[string][]int{}
	var purposes []string
	for i, rec := range recs {
		if _, ok := byPurpose[rec.Purpose]; !ok {
			purposes = append(purposes, rec.Purpose)
		}
		byPurpose[rec.Purpose] = append(byPurpose[rec.Purpose], i)
	}
	for _, purpose := range purposes {
		use := r(purpose)
		use.Hot = hot
		var ids []string
		seen := map[string]bool{}
		for _, i := range byPurpose[purpose] {
			if id := recs[i].SubjectID; !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
		b, err := o.door.Subjects(ctx, q, use, ids)
		if err != nil {
			return nil, fmt.Errorf("mail: open messages: %w", err)
		}
		for _, i := range byPurpose[purpose] {
			withheld := func(why string) { out[i] = recs[i].Stored; out[i].Withheld = why }
			v, err := b.View(recs[i].SubjectID)
			if err != nil {
				withheld(withheldUnknown)
				continue
			}
			s, err := open(ctx, v, recs[i])
			if den, ok := door.IsDenied(err); ok {
				withheld(den.Reason.String())
				continue
			}
			switch {
			case errors.Is(err, door.ErrShredded):
				withheld(withheldErased)
			case errors.Is(err, door.ErrCorrupt):
				withheld(withheldCorrupt)
			case err != nil:
				return nil, fmt.Errorf("mail: open message %s: %w", recs[i].ID, err)
			default:
				out[i] = s
			}
		}
	}
	return out, nil
}

// records reads the messages a query tail selects, still sealed.
func (o *Outbox) records(ctx context.Context, q store.Q, tail string, args ...any) ([]record, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+recordColumns+` FROM mail_outbox `+tail, args...)
	if err != nil {
		return nil, fmt.Errorf("mail: list messages: %w", err)
	}
	defer rows.Close()
	var out []record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("mail: list messages: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// load reads one message, still sealed, or a not_found fault.
func (o *Outbox) load(ctx context.Context, q store.Q, id string) (record, error) {
	r, err := scanRecord(q.QueryRowContext(ctx, `SELECT `+recordColumns+` FROM mail_outbox WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return record{}, fault.New(fault.NotFound, "no such message")
	}
	if err != nil {
		return record{}, fmt.Errorf("mail: get message: %w", err)
	}
	return r, nil
}

// List returns up to limit messages, newest first, each opened for the
// reader (for /admin/outbox) or withheld.
func (o *Outbox) List(ctx context.Context, r Reader, limit int) ([]Stored, error) {
	recs, err := o.records(ctx, o.db, `ORDER BY created_at DESC, id DESC LIMIT $1`, limitOf(limit))
	if err != nil {
		return nil, err
	}
	return o.openAll(ctx, o.db, r, recs, true)
}

// ForSubject returns up to limit messages sent to one subject, newest
// first, opened for the subject themself (their privacy centre and access
// report).
func (o *Outbox) ForSubject(ctx context.Context, q store.Q, subjectID string, limit int) ([]Stored, error) {
	recs, err := o.records(ctx, q, `WHERE subject_id = $2 ORDER BY created_at DESC, id DESC LIMIT $1`, limitOf(limit), subjectID)
	if err != nil {
		return nil, err
	}
	return o.openAll(ctx, q, AsRecipient, recs, false)
}

func limitOf(n int) int {
	if n <= 0 || n > 1000 {
		return 100
	}
	return n
}

// Get returns one message's delivery record, or a not_found fault: its
// ids, kind, purpose and delivery state, with what it says still sealed
// (To, Subject, the bodies, headers and unsubscribe methods empty). Open
// reads the message.
func (o *Outbox) Get(ctx context.Context, id string) (Stored, error) {
	r, err := o.load(ctx, o.db, id)
	return r.Stored, err
}

// Open returns one message opened for the reader, or withheld, or a
// not_found fault. A refusal is audited at once.
func (o *Outbox) Open(ctx context.Context, r Reader, id string) (Stored, error) {
	rec, err := o.load(ctx, o.db, id)
	if err != nil {
		return Stored{}, err
	}
	out, err := o.openAll(ctx, o.db, r, []record{rec}, false)
	if err != nil {
		return Stored{}, err
	}
	return out[0], nil
}
