package mail

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"steward/internal/fault"
	"steward/internal/store"
)

// Bulk mail — a newsletter campaign, a notice to everyone — goes out in
// batches. Each batch takes the next people after a cursor (subject ids,
// in order), queues their mail as one outbox batch, so one delivery job,
// and records per recipient whether mail was queued or why not. The
// package that owns the bulk send keeps its audience, the per-recipient
// records and the cursor in its own tables, and runs each batch in its own
// transaction and job: a crash re-runs exactly the batch that did not
// commit.

// Recipient is one person a batch of bulk mail concerns.
type Recipient struct {
	SubjectID string
	// Skip says why no mail goes to them (no personal data: it is stored
	// in the record); when it is empty, Message is queued.
	Skip    string
	Message Message
}

// Page is the people of one batch as the owner of a bulk send found them.
type Page struct {
	Recipients []Recipient
	// Last is the id of the last person read, recipient or not (someone
	// outside a notice's audience is read, not recorded): the next batch
	// starts after it. Empty when nobody was read.
	Last string
	// Full reports that as many people were read as were asked for, so a
	// next batch may find more.
	Full bool
}

// Bulk is one bulk send as the package that owns it keeps it.
type Bulk interface {
	// Next reads at most limit people after the cursor after, in id
	// order, and returns them with the mail to send each or the reason
	// there is none.
	Next(ctx context.Context, tx *sql.Tx, after string, limit int) (Page, error)
	// Record stores the batch's per-recipient records (DeliveryTable
	// writes a table of the usual shape).
	Record(ctx context.Context, tx *sql.Tx, ds []Delivery, now time.Time) error
}

// Per-recipient record states.
const (
	DeliveryQueued  = "queued"
	DeliverySkipped = "skipped"
)

// Delivery is one recipient's record of a batch: queued, with the outbox
// id of the message, or skipped, with the reason.
type Delivery struct {
	SubjectID string
	Status    string
	Reason    string
	OutboxID  string
}

// Progress is what one batch did, for its owner to store with the cursor.
type Progress struct {
	After           string    // the cursor the next batch starts after
	Done            bool      // no batch follows
	Queued, Skipped int       // records of this batch by state
	At              time.Time // when the batch ran: its records' time
}

// SendBatch runs one batch of b within tx: the people after the cursor
// after (at most limit), their mail sealed and queued as one outbox batch
// (as EnqueueUsable does), and the record of each recipient. A message the
// outbox refuses does not stop the others: its recipient is recorded as
// skipped, with the reason (an unusable address, the door's refusal of the
// message's purpose, an erased recipient).
// The owner stores the progress and queues the next batch in the same
// transaction.
func (o *Outbox) SendBatch(ctx context.Context, tx *sql.Tx, b Bulk, after string, limit int) (Progress, error) {
	now := o.clock.Now()
	page, err := b.Next(ctx, tx, after, limit)
	if err != nil {
		return Progress{}, err
	}
	ds := make([]Delivery, len(page.Recipients))
	var msgs []Message
	var msgAt []int
	for i, r := range page.Recipients {
		ds[i] = Delivery{SubjectID: r.SubjectID, Status: DeliverySkipped, Reason: r.Skip}
		if r.Skip == "" {
			msgs = append(msgs, r.Message)
			msgAt = append(msgAt, i)
		}
	}
	ids, why, err := o.enqueueBatch(ctx, tx, msgs, true)
	if err != nil {
		return Progress{}, fmt.Errorf("mail: queue bulk mail: %w", err)
	}
	p := Progress{After: after, Done: !page.Full, At: now}
	for k, i := range msgAt {
		if ids[k] == "" {
			ds[i].Reason = why[k]
			continue
		}
		ds[i].Status, ds[i].OutboxID = DeliveryQueued, ids[k]
		p.Queued++
	}
	p.Skipped = len(ds) - p.Queued
	if err := b.Record(ctx, tx, ds, now); err != nil {
		return Progress{}, err
	}
	if page.Last != "" {
		p.After = page.Last
	}
	return p, nil
}

// DeliveryTable is a table of per-recipient records of bulk sends, owned
// and migrated by the package that sends them, with the columns (Key,
// subject_id, status, reason, outbox_id, created_at) and a unique key on
// (Key, subject_id).
type DeliveryTable struct {
	Name string
	Key  string // the column that names the bulk send
}

// deliveryRows is how many records one INSERT writes on SQLite: a batch
// of 500 is five executions of one prepared statement.
const deliveryRows = 100

// Record writes a batch's records of the bulk send id: on PostgreSQL in
// one statement of arrays, on SQLite in multi-row inserts of deliveryRows
// rows with plain "?" parameters (SQLite looks "$N" names up by a linear
// search while parsing, which makes a statement of hundreds of them cost
// more than the rows it writes), prepared once when it runs more than
// once. A recipient already recorded (a batch run twice) keeps its row.
func (t DeliveryTable) Record(ctx context.Context, tx *sql.Tx, engine store.Engine, id string, ds []Delivery, now time.Time) error {
	if len(ds) == 0 {
		return nil
	}
	head := `INSERT INTO ` + t.Name + ` (` + t.Key + `, subject_id, status, reason, outbox_id, created_at) `
	conflict := ` ON CONFLICT (` + t.Key + `, subject_id) DO NOTHING`
	if engine == store.Postgres {
		cols := [4][]string{}
		for c := range cols {
			cols[c] = make([]string, len(ds))
		}
		for i, d := range ds {
			cols[0][i], cols[1][i], cols[2][i], cols[3][i] = d.SubjectID, d.Status, d.Reason, d.OutboxID
		}
		if _, err := tx.ExecContext(ctx, head+`SELECT $1::text, t.*, $2::timestamptz FROM unnest($3::text[], $4::text[], $5::text[], $6::text[]) AS t`+conflict,
			id, now, cols[0], cols[1], cols[2], cols[3]); err != nil {
			return fmt.Errorf("mail: record deliveries in %s: %w", t.Name, err)
		}
		return nil
	}
	insert := func(n int) string {
		return head + `VALUES ` + strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?), ", n), ", ") + conflict
	}
	var stmt *sql.Stmt
	if len(ds) >= 2*deliveryRows {
		var err error
		if stmt, err = tx.PrepareContext(ctx, insert(deliveryRows)); err != nil {
			return fmt.Errorf("mail: record deliveries in %s: %w", t.Name, err)
		}
		defer stmt.Close()
	}
	for start := 0; start < len(ds); start += deliveryRows {
		part := ds[start:min(start+deliveryRows, len(ds))]
		args := make([]any, 0, len(part)*6)
		for _, d := range part {
			args = append(args, id, d.SubjectID, d.Status, d.Reason, d.OutboxID, now)
		}
		var err error
		if stmt != nil && len(part) == deliveryRows {
			_, err = stmt.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, insert(len(part)), args...)
		}
		if err != nil {
			return fmt.Errorf("mail: record deliveries in %s: %w", t.Name, err)
		}
	}
	return nil
}

// CheckText refuses text people write for mail and pages (a bulk mail's
// subject and body, a list's name) that must never reach a mail header or
// a page as given: invalid UTF-8, control characters (CR/LF header
// injection) outside a multiline text, overlong values.
func CheckText(field, s string, max int, multiline bool) error {
	if !utf8.ValidString(s) {
		return fault.FieldError(field, "%s is not valid UTF-8", field)
	}
	if len(s) > max {
		return &fault.Error{Code: fault.TooLarge, Field: field, Message: fmt.Sprintf("%s is longer than %d bytes", field, max)}
	}
	for _, r := range s {
		if multiline && (r == '\n' || r == '\r' || r == '\t') {
			continue
		}
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return fault.FieldError(field, "%s contains a line break or control character", field)
		}
	}
	return nil
}
